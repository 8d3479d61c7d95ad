using System.Globalization;
using System.Net;

namespace Ws2s.Host;

/// <summary>
/// The TCP addresses a process listens on, as the kernel knows them: the listening sockets in
/// <c>/proc/PID/net/tcp</c> and <c>tcp6</c> whose inodes are among the process's open files
/// (<c>/proc/PID/fd</c>). Empty when the process cannot be inspected (gone, or another user's).
/// </summary>
internal static class ListeningSockets
{
    private const string Listen = "0A"; // TCP_LISTEN in the st column

    public static IReadOnlyList<IPEndPoint> Of(int pid)
    {
        try
        {
            var inodes = new HashSet<string>(StringComparer.Ordinal);
            foreach (var fd in Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"))
                if (new FileInfo(fd).LinkTarget is { } target && target.StartsWith("socket:[", StringComparison.Ordinal))
                    inodes.Add(target["socket:[".Length..^1]);
            return [.. Table($"/proc/{pid}/net/tcp", inodes), .. Table($"/proc/{pid}/net/tcp6", inodes)];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    /// <summary>Whether the process shares this process's network namespace (so its loopback is ours).</summary>
    public static bool SameNetwork(int pid)
    {
        try
        {
            return new FileInfo($"/proc/{pid}/ns/net").LinkTarget is { } theirs && theirs == new FileInfo("/proc/self/ns/net").LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>One table's listening sockets among <paramref name="inodes"/> (columns: sl local rem st … uid timeout inode).</summary>
    private static IEnumerable<IPEndPoint> Table(string path, HashSet<string> inodes)
    {
        if (!File.Exists(path)) yield break;
        foreach (var line in File.ReadLines(path).Skip(1))
        {
            var columns = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (columns.Length < 10 || columns[3] != Listen || !inodes.Contains(columns[9])) continue;
            var (address, port) = (columns[1].Split(':')[0], columns[1].Split(':')[1]);
            yield return new IPEndPoint(Address(address), int.Parse(port, NumberStyles.HexNumber, CultureInfo.InvariantCulture));
        }
    }

    /// <summary>The kernel prints each 32-bit word of the address in the machine's byte order (little-endian on x64 and arm64).</summary>
    private static IPAddress Address(string hex)
    {
        var bytes = Convert.FromHexString(hex);
        for (var word = 0; word < bytes.Length; word += 4)
            if (BitConverter.IsLittleEndian) Array.Reverse(bytes, word, 4);
        return new IPAddress(bytes);
    }
}
