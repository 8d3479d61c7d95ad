using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Ws2s.Host;

/// <summary>
/// How the background server is known for certain: it holds a lock on <c>~/.ws2s/ws2sd.lock</c> for its
/// whole life (a POSIX record lock, <c>fcntl(F_SETLK)</c>), the kernel drops the lock when the process
/// ends however it ends, and tells anyone who asks (<c>F_GETLK</c>) which process holds it. That
/// process, and never a pid read from a file, is the server that start, stop, status and reload act on.
/// A lock, unlike a pid and its command line, cannot be claimed by an unrelated process that happens to
/// say "ws2sd", cannot name another home's server, and does not outlive its process to be reused.
/// </summary>
internal static class InstanceLock
{
    [StructLayout(LayoutKind.Sequential)]
    private struct Flock
    {
        public short Type;
        public short Whence;
        public long Start;
        public long Length; // 0: to the end of the file, however long it grows
        public int Pid;
    }

#pragma warning disable SYSLIB1054 // DllImport: LibraryImport would need unsafe code for these calls
    [DllImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static extern int Fcntl(SafeFileHandle fd, int command, ref Flock flock);
#pragma warning restore SYSLIB1054

    private const int GetLock = 5, SetLock = 6; // F_GETLK, F_SETLK (the same on every 64-bit Linux)
    private const short WriteLock = 1, Unlocked = 2; // F_WRLCK, F_UNLCK

    /// <summary>
    /// Takes the lock for this process and returns the file holding it (keep it open: closing it, or any
    /// other handle on the same file, releases the lock), or null when another process holds it.
    /// </summary>
    public static SafeFileHandle? Take(string path)
    {
        var file = NoFollow.OpenToLock(path);
        var flock = new Flock { Type = WriteLock };
        if (Fcntl(file, SetLock, ref flock) == 0) return file;
        file.Dispose();
        return null;
    }

    /// <summary>The pid of the process that holds the lock, or null when none does (or there is no lock file).</summary>
    public static int? Holder(string path)
    {
        using var file = NoFollow.OpenToRead(path);
        if (file is null) return null;
        var flock = new Flock { Type = WriteLock };
        if (Fcntl(file, GetLock, ref flock) != 0)
            throw new IOException($"cannot ask who locks {path}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        return flock.Type == Unlocked || flock.Pid <= 0 ? null : flock.Pid;
    }
}
