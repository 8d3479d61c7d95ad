using System.Security.Cryptography;
using System.Text;

namespace Ws2s.AspNetCore.Ssh;

/// <summary>
/// Host-key checking against an OpenSSH known_hosts file (plain and hashed host patterns,
/// <c>[host]:port</c> for other ports). Without a file every key is refused, unless the operator
/// chose <c>acceptUnknownHostKeys</c>: trust on first use is never silent.
/// </summary>
internal sealed class KnownHosts(string? path, bool acceptUnknown)
{
    private readonly List<(string[] Patterns, string KeyType, byte[] Key)> _entries = Load(path);

    public bool AcceptsUnknown => acceptUnknown;

    /// <summary>Is <paramref name="key"/> (its wire blob) the known key of <paramref name="host"/>:<paramref name="port"/>?</summary>
    public bool Trusts(string host, int port, string keyType, byte[] key)
    {
        if (acceptUnknown) return true;
        var name = port == 22 ? host : $"[{host}]:{port}";
        return _entries.Any(e => e.KeyType == keyType && e.Key.AsSpan().SequenceEqual(key) && e.Patterns.Any(p => Matches(p, name)));
    }

    private static bool Matches(string pattern, string name)
    {
        if (!pattern.StartsWith("|1|", StringComparison.Ordinal)) return string.Equals(pattern, name, StringComparison.OrdinalIgnoreCase);
        // Hashed: |1|base64(salt)|base64(HMAC-SHA1(salt, name))
        var parts = pattern.Split('|');
        if (parts.Length != 4) return false;
        try
        {
            var salt = Convert.FromBase64String(parts[2]);
            return HMACSHA1.HashData(salt, Encoding.ASCII.GetBytes(name)).AsSpan().SequenceEqual(Convert.FromBase64String(parts[3]));
        }
        catch (FormatException)
        {
            return false;
        }
    }

    private static List<(string[], string, byte[])> Load(string? path)
    {
        var entries = new List<(string[], string, byte[])>();
        if (path is null) return entries;
        foreach (var raw in File.ReadAllLines(path))
        {
            var fields = raw.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 3 || fields[0].StartsWith('#') || fields[0].StartsWith('@')) continue;
            try
            {
                entries.Add((fields[0].Split(','), fields[1], Convert.FromBase64String(fields[2])));
            }
            catch (FormatException)
            {
                // Not a key line: skip it, as ssh does.
            }
        }
        return entries;
    }
}
