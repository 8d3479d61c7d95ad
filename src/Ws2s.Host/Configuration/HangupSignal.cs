using System.Runtime.InteropServices;

namespace Ws2s.Host.Configuration;

/// <summary>
/// ws2sd takes SIGHUP to mean "reload" (<see cref="ConfigReloader"/>), and never ends on it. A process started with SIGHUP
/// ignored (<c>nohup ws2sd start</c>, or under any parent that ignores it: the ignore is inherited across exec) keeps the
/// ignore in .NET, whose handler is then never installed, and <c>ws2sd reload</c> waited for an answer that never came.
/// Before it registers, ws2sd takes an ignored SIGHUP back to its default, so the runtime's handler goes in; the
/// registration then keeps the signal from ending the process, which is all the ignore was for.
/// </summary>
internal static class HangupSignal
{
    private const int SigHup = 1;
    private static readonly IntPtr SigIgn = 1;

    /// <summary><c>struct sigaction</c> on Linux (glibc and musl, x64 and arm64): the handler first; 256 bytes cover the rest.</summary>
    [StructLayout(LayoutKind.Sequential, Size = 256)]
    private struct SigAction
    {
        public IntPtr Handler;
    }

#pragma warning disable SYSLIB1054 // DllImport: LibraryImport would need unsafe code for this one call
    [DllImport("libc", EntryPoint = "sigaction", SetLastError = true)]
    private static extern int Sigaction(int signal, ref SigAction action, ref SigAction old);

    [DllImport("libc", EntryPoint = "sigaction", SetLastError = true)]
    private static extern int Query(int signal, IntPtr action, ref SigAction old);
#pragma warning restore SYSLIB1054

    /// <summary>Takes an ignored SIGHUP back to its default (on Linux; elsewhere nothing). True when it was ignored.</summary>
    public static bool Unignore()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            var current = new SigAction();
            if (Query(SigHup, IntPtr.Zero, ref current) != 0 || current.Handler != SigIgn) return false;
            var standard = new SigAction(); // SIG_DFL, no mask, no flags
            var old = new SigAction();
            return Sigaction(SigHup, ref standard, ref old) == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }
}
