using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;

namespace Ws2s.AspNetCore.Configuration;

/// <summary>A key nothing reads, named as given, with the known key nearest to it.</summary>
internal static partial class Ws2sConfigKeys
{
    /// <summary>An unknown key: named as given, with the known key nearest to it.</summary>
    private static string Unknown(Section root, List<string> known, string[] rest, Section parent, Origin source)
    {
        // A command-line option or a variable names the whole key at once: it is judged, and corrected, whole.
        // In a file the misspelt name is one key of an object: that key is named (once for all below it).
        var whole = source.Provider is not FileConfigurationProvider;
        var wrongKeys = whole ? rest : rest[..1];
        var given = Name([.. known, .. wrongKeys]);
        var all = KnownPaths(root);
        // A near spelling among its siblings first (destinatons → destinations), else a key anywhere ending the same way (--port → listen.port).
        var sibling = parent.Keys.Keys
            .Select(k => (Key: k, Distance: Nearness(rest[0], k))).Where(c => c.Distance <= Tolerance(rest[0])).OrderBy(c => c.Distance).FirstOrDefault().Key;
        string? suggestion;
        if (sibling is not null)
        {
            var below = Name([.. known, sibling, .. rest[1..]]);
            suggestion = whole && all.Contains(Indexless().Replace(below, ""), StringComparer.OrdinalIgnoreCase) ? below : Name([.. known, sibling]);
        }
        else
        {
            var tail = string.Join(".", wrongKeys);
            suggestion = all.Select(p => (Path: p, Distance: Nearness(tail, Tail(p, wrongKeys.Length))))
                .Where(c => c.Distance <= Tolerance(tail)).OrderBy(c => c.Distance).ThenBy(c => c.Path.Length).Select(c => c.Path).FirstOrDefault();
        }
        var text = $"unknown key '{given}' ({Where(source, [.. known.Select(Unindexed), .. wrongKeys])}): nothing reads it";
        return suggestion is null ? text : $"{text}; did you mean '{suggestion}'{Spelling(source, suggestion)}?";

        static string Unindexed(string spelled) => spelled.Replace("[", ":", StringComparison.Ordinal).Replace("]", "", StringComparison.Ordinal);
        static string Tail(string path, int count) => string.Join(".", path.Split('.')[^Math.Min(count, path.Split('.').Length)..]);
    }

    [GeneratedRegex(@"\[\d+\]")]
    private static partial Regex Indexless();

    /// <summary>How far a misspelling is from a key: its edit distance, or 1 when it is the key's beginning (idleTimeout → idleTimeoutSeconds).</summary>
    private static int Nearness(string wrong, string key) =>
        wrong.Length >= 4 && key.StartsWith(wrong, StringComparison.OrdinalIgnoreCase) ? Math.Min(1, Distance(wrong, key)) : Distance(wrong, key);

    private static List<string> KnownPaths(Section root) =>
        Paths(root, "").Where(p => !p.Contains('*', StringComparison.Ordinal)).Select(p => p.Replace("[]", "", StringComparison.Ordinal)).ToList();

    /// <summary>How far apart two spellings are (optimal string alignment, case ignored).</summary>
    public static int Distance(string a, string b)
    {
        a = a.ToLowerInvariant();
        b = b.ToLowerInvariant();
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (var j = 0; j <= b.Length; j++) d[0, j] = j;
        for (var i = 1; i <= a.Length; i++)
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        return d[a.Length, b.Length];
    }

    private static int Tolerance(string word) => Math.Clamp(word.Length / 3, 1, 3);
}
