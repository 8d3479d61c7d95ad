using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Ws2s.Host;

/// <summary>
/// Opens the daemon's files in <c>~/.ws2s</c> the way <c>open(2)</c> with <c>O_NOFOLLOW</c> does: a path
/// whose last component is a symbolic link is refused (<see cref="LinkRefusedException"/>), never followed,
/// so nothing planted there can make ws2sd write into, or read from, another file. Linux only.
/// </summary>
internal static class NoFollow
{
#pragma warning disable SYSLIB1054 // DllImport: LibraryImport would need unsafe code for these int-only calls
    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int Open(string path, int flags, int mode);
#pragma warning restore SYSLIB1054

    private const int ReadOnly = 0, WriteOnly = 1, ReadWrite = 2, Create = 0x40, Exclusive = 0x80, Append = 0x400, CloseOnExec = 0x80000;
    private const int NoSuchFile = 2, TooManyLinks = 40; // ENOENT, ELOOP (what O_NOFOLLOW answers for a link)

    /// <summary>O_NOFOLLOW: the one flag whose value differs between Linux's architectures.</summary>
    private static int NoFollowFlag => RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 or Architecture.X86 => 0x20000,
        Architecture.Arm64 or Architecture.Arm => 0x8000,
        var other => throw new PlatformNotSupportedException($"O_NOFOLLOW is not known for {other}"),
    };

    /// <summary>Only the owner may read or write the files ws2sd creates (0600).</summary>
    private const int OwnerOnly = 0b110_000_000;

    /// <summary>A file to append to (created if missing): the log.</summary>
    public static FileStream OpenAppend(string path)
    {
        var stream = new FileStream(Handle(path, WriteOnly | Append | Create), FileAccess.Write);
        stream.Seek(0, SeekOrigin.End);
        return stream;
    }

    /// <summary>A new file to write, which must not exist yet (a pid file before it is renamed into place).</summary>
    public static FileStream CreateNew(string path) => new(Handle(path, WriteOnly | Create | Exclusive), FileAccess.Write);

    /// <summary>
    /// Replaces <paramref name="path"/> with these lines without ever writing through a link: into a new file next to it
    /// (created exclusively, not following links), then renamed over it, which replaces whatever is there, a link included.
    /// </summary>
    public static void ReplaceLines(string path, IEnumerable<string> lines)
    {
        var temporary = $"{path}.{Environment.ProcessId}.tmp";
        File.Delete(temporary);
        using (var file = new StreamWriter(CreateNew(temporary)))
            foreach (var line in lines) file.Write(line + "\n");
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>The file to lock (created if missing): see <see cref="InstanceLock"/>.</summary>
    public static SafeFileHandle OpenToLock(string path) => Handle(path, ReadWrite | Create);

    /// <summary>A file to read, or null when it does not exist.</summary>
    public static SafeFileHandle? OpenToRead(string path)
    {
        var fd = Open(path, ReadOnly | NoFollowFlag | CloseOnExec, 0);
        if (fd < 0 && Marshal.GetLastPInvokeError() == NoSuchFile) return null;
        return Checked(fd, path);
    }

    /// <summary>All the lines of a file, or null when it does not exist.</summary>
    public static string[]? ReadAllLines(string path)
    {
        if (OpenToRead(path) is not { } handle) return null;
        using var reader = new StreamReader(new FileStream(handle, FileAccess.Read));
        var text = reader.ReadToEnd();
        var lines = text.Split('\n');
        return text.EndsWith('\n') ? lines[..^1] : lines;
    }

    private static SafeFileHandle Handle(string path, int flags) => Checked(Open(path, flags | NoFollowFlag | CloseOnExec, OwnerOnly), path);

    private static SafeFileHandle Checked(int fd, string path)
    {
        if (fd >= 0) return new SafeFileHandle(fd, ownsHandle: true);
        var error = Marshal.GetLastPInvokeError();
        if (error == TooManyLinks) throw new LinkRefusedException(path);
        throw new IOException($"cannot open {path}: {Marshal.GetPInvokeErrorMessage(error)}", error);
    }

    /// <summary>
    /// Why the paths may not be used, or null: the first one that is a symbolic link (checked without following it).
    /// The friendly early answer; the opens above are what enforce it.
    /// </summary>
    public static string? Refusal(IEnumerable<string> paths) =>
        paths.FirstOrDefault(p => new FileInfo(p).LinkTarget is not null) is { } link ? LinkRefusedException.Explain(link) : null;
}

/// <summary>A path in <c>~/.ws2s</c> is a symbolic link, which ws2sd never follows.</summary>
public sealed class LinkRefusedException(string path) : IOException(Explain(path))
{
    public static string Explain(string path) =>
        $"{path} is a symbolic link; ws2sd does not follow links in ~/.ws2s (remove it, or make it a real file or folder)";
}
