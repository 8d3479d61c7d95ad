using System.Globalization;
using System.Runtime.InteropServices;

namespace Ws2s.Host;

/// <summary>Which process is this home's server (the holder of its lock), and how to signal only that process.</summary>
internal static partial class Daemon
{
    // kill(2) and pidfd_open/pidfd_send_signal: .NET's Process.Kill only sends SIGKILL; SIGTERM (a clean stop) and SIGHUP (reload) need the calls themselves.
#pragma warning disable SYSLIB1054 // DllImport: LibraryImport would need unsafe code for these int-only calls
    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    [DllImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static extern long PidfdOpen(long number, int pid, uint flags);

    [DllImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static extern long PidfdSendSignal(long number, int pidfd, int signal, IntPtr info, uint flags);

    [DllImport("libc", EntryPoint = "close")]
    private static extern int Close(int fd);
#pragma warning restore SYSLIB1054

    private const long SysPidfdSendSignal = 424, SysPidfdOpen = 434; // the same number on every Linux architecture
    private const int SigTerm = 15, SigKill = 9, SigHup = 1;

    /// <summary>What the pid file says: the server's pid, then the URLs it listens on (text to show and ports to check, never addresses to dial).</summary>
    private sealed record PidFileRecord(int Pid, string? Url, string? Management)
    {
        /// <summary>The pid file as written, or null when it is missing or does not start with a pid.</summary>
        public static PidFileRecord? Read()
        {
            var lines = NoFollow.ReadAllLines(PidFile);
            if (lines is null || lines.Length == 0 || !int.TryParse(lines[0], CultureInfo.InvariantCulture, out var pid)) return null;
            return new(pid, lines.ElementAtOrDefault(1) is { Length: > 0 } url ? url : null, lines.ElementAtOrDefault(2) is { Length: > 0 } m ? m : null);
        }
    }

    /// <summary>This home's server: the pid holding the lock, and the pid file if it is that process's (null until it listens).</summary>
    private sealed record Instance(int Pid, PidFileRecord? Record);

    /// <summary>
    /// The server holding this home's lock, if one does. <paramref name="stale"/>: a pid file exists that
    /// does not name it (its process is gone, is something else, or is another home's server).
    /// </summary>
    private static Instance? Running(out bool stale)
    {
        var holder = InstanceLock.Holder(LockFile);
        var exists = File.Exists(PidFile);
        var record = PidFileRecord.Read();
        stale = exists && (holder is null || record?.Pid != holder);
        return holder is { } pid ? new Instance(pid, record?.Pid == pid ? record : null) : null;
    }

    /// <summary>
    /// Sends <paramref name="signal"/> to <paramref name="pid"/> only while it holds this home's lock: the
    /// process is pinned by a pidfd first, so a pid freed and reused in between is never signalled.
    /// </summary>
    private static bool Signal(int pid, int signal)
    {
        var pidfd = (int)PidfdOpen(SysPidfdOpen, pid, 0);
        try
        {
            if (InstanceLock.Holder(LockFile) != pid) return false;
            return pidfd >= 0 ? PidfdSendSignal(SysPidfdSendSignal, pidfd, signal, IntPtr.Zero, 0) == 0 : Kill(pid, signal) == 0; // kernels before 5.3: kill
        }
        finally
        {
            if (pidfd >= 0) Close(pidfd);
        }
    }
}
