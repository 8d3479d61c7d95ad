using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;

namespace Ws2s.AspNetCore.Configuration;

/// <summary>
/// The keys <see cref="Ws2sOptions"/> knows, learnt from its properties, and a check of configuration
/// against them before it is bound: a key nobody reads (<c>destinatons</c>, <c>--listne:port</c>) or a
/// value of the wrong kind (<c>--listen:port abc</c>) is named in the config's own spelling
/// (<c>listen.port</c>), with where it was set (which file, variable or option) and what to do — rather
/// than being ignored, which can silently leave a machine open.
/// </summary>
public static partial class Ws2sConfigKeys
{
    /// <summary>What a configuration key may hold: a value, an object of known keys, a list, or a map of any names.</summary>
    private abstract record Node;

    private sealed record Value(Type Type, bool Nullable) : Node;

    private sealed record Section(IReadOnlyDictionary<string, Node> Keys) : Node;

    private sealed record ListOf(Node Item) : Node;

    private sealed record MapOf(Node Item) : Node;

    /// <summary>A key whose content someone else checks (the logging section, a program's own options).</summary>
    private sealed record Anything : Node;

    private static readonly Section Options = (Section)NodeOf(typeof(Ws2sOptions));

    /// <summary>Every key of <see cref="Ws2sOptions"/> in the config's spelling (<c>listen.port</c>, <c>endpoints[].host</c>, <c>rawTargets.*</c>).</summary>
    public static IEnumerable<string> All() => Paths(Options, "");

    private static IEnumerable<string> Paths(Node node, string prefix) => node switch
    {
        Section section => section.Keys.SelectMany(k => Paths(k.Value, Join(prefix, k.Key)).Prepend(Join(prefix, k.Key))).Distinct(),
        ListOf list => Paths(list.Item, prefix + "[]"),
        MapOf map => Paths(map.Item, Join(prefix, "*")).Prepend(Join(prefix, "*")),
        _ => [],
    };

    private static string Join(string prefix, string key) => prefix.Length == 0 ? key : prefix + "." + key;

    private static Node NodeOf(Type type)
    {
        if (Nullable.GetUnderlyingType(type) is { } inner) return new Value(inner, true);
        if (type == typeof(string)) return new Value(type, true);
        if (type.IsPrimitive || type.IsEnum || type == typeof(decimal)) return new Value(type, false);
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(List<>)) return new ListOf(NodeOf(type.GetGenericArguments()[0]));
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(Dictionary<,>)) return new MapOf(NodeOf(type.GetGenericArguments()[1]));
        var keys = new Dictionary<string, Node>(StringComparer.OrdinalIgnoreCase);
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
            if (property.SetMethod is { IsPublic: true })
                keys[char.ToLowerInvariant(property.Name[0]) + property.Name[1..]] = NodeOf(property.PropertyType);
        return new Section(keys);
    }

    /// <summary>
    /// Every key in <paramref name="configuration"/> that <see cref="Ws2sOptions"/> does not know, and every value
    /// that cannot become what its key holds, each in words that name the key, where it was set, and what to do.
    /// <paramref name="others"/>: top-level keys that are not ws2s options but are read by someone else (the
    /// program's <c>logFormat</c>, the <c>Logging</c> section); what is below them is not checked here.
    /// </summary>
    public static IReadOnlyList<string> Problems(IConfigurationRoot configuration, params string[] others) => Problems(configuration, null, others);

    /// <summary>
    /// The same for the keys under <paramref name="section"/> (an app's <c>"Ws2s"</c> section bound to
    /// <see cref="Ws2sOptions"/>), named where they were set by their whole path (<c>--Ws2s:listen:port</c>).
    /// </summary>
    public static IReadOnlyList<string> Problems(IConfigurationRoot configuration, string? section, params string[] others)
    {
        var top = new Dictionary<string, Node>(Options.Keys, StringComparer.OrdinalIgnoreCase);
        foreach (var other in others) top[other] = new Anything();
        var root = new Section(top);
        var prefix = section is null ? [] : section.Split(':');
        var problems = new List<string>();
        // The last source that sets a key wins: a value is judged where it came from.
        var judged = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var provider in configuration.Providers.Reverse())
            foreach (var key in Keys(provider, section))
            {
                if (!judged.Add(key)) continue;
                provider.TryGet(key, out var value);
                if (Judge(root, key.Split(':')[prefix.Length..], value, new Origin(provider, prefix)) is { } problem) problems.Add(problem);
            }
        return problems.Distinct().ToList();
    }


    /// <summary>Every key a source sets: those with a value, and empty lists and objects (<c>[]</c>, <c>{}</c>).</summary>
    private static IEnumerable<string> Keys(IConfigurationProvider provider, string? parent)
    {
        foreach (var child in provider.GetChildKeys([], parent).Distinct(StringComparer.OrdinalIgnoreCase))
        {
            var key = parent is null ? child : parent + ConfigurationPath.KeyDelimiter + child;
            if (provider.TryGet(key, out _)) yield return key;
            foreach (var below in Keys(provider, key)) yield return below;
        }
    }

    private static string? Judge(Section root, string[] segments, string? value, Origin source)
    {
        Node node = root;
        var spelled = new List<string>();
        for (var i = 0; i < segments.Length; i++)
        {
            var segment = segments[i];
            switch (node)
            {
                case Anything:
                    return null;
                case Section section when section.Keys.TryGetValue(segment, out var next):
                    spelled.Add(section.Keys.Keys.First(k => k.Equals(segment, StringComparison.OrdinalIgnoreCase)));
                    node = next;
                    break;
                case Section section:
                    return Unknown(root, spelled, segments[i..], section, source);
                case ListOf list when int.TryParse(segment, NumberStyles.None, CultureInfo.InvariantCulture, out _):
                    spelled[^1] += $"[{segment}]";
                    node = list.Item;
                    break;
                case ListOf:
                    return $"{Name(spelled)} is a list, so '{segment}' cannot be under it ({Where(source, segments)}): " + (source.Provider is FileConfigurationProvider
                        ? $"in JSON its items go in brackets (\"{segments[i - 1]}\": [{{\"{segment}\": …}}])"
                        : $"list items are numbered ({Example(source, [.. segments[..i], "0"])})");
                case MapOf map:
                    spelled.Add(segment);
                    node = map.Item;
                    break;
                case Value:
                    return $"{Name(spelled)} holds a value, not keys such as '{segment}' ({Where(source, segments)})";
            }
        }
        // A single value where a list or an object belongs is not repeated unless its key is one for plain words: it
        // may be a secret put in the wrong place ("tokens": "S3CRET", "auth": {"jwt": "S3CRET"}), and these words are logged.
        var shown = node is ListOf && !Secret(spelled) ? value : null;
        return node switch
        {
            Value v => ValueProblem(v, Name(spelled), value, source, segments),
            ListOf when !string.IsNullOrEmpty(value) =>
                $"{Name(spelled)}{(shown is null ? "" : $" '{shown}'")} ({Where(source, segments)}) must be a list, not a single value: "
                + $"in JSON [\"{shown ?? "…"}\"], {ItemExample(source, segments, shown ?? "…")}",
            Section or MapOf when !string.IsNullOrEmpty(value) =>
                $"{Name(spelled)} ({Where(source, segments)}) must be an object, not a single value: "
                + $"give its keys ({string.Join(", ", (node as Section)?.Keys.Keys ?? ["NAME"])})",
            _ => null,
        };
    }

    /// <summary>Whether a key may hold a secret (<c>tokens</c>, <c>endpoints[].pfxPassword</c>, <c>auth.jwt.secretFile</c>'s neighbours).</summary>
    private static bool Secret(IEnumerable<string> spelled) =>
        spelled.Any(s => SecretWords.Any(w => s.Contains(w, StringComparison.OrdinalIgnoreCase)));

    private static readonly string[] SecretWords = ["token", "password", "secret", "key"];

    private static string? ValueProblem(Value node, string name, string? value, Origin source, string[] segments)
    {
        if (string.IsNullOrEmpty(value))
            return node.Nullable ? null : $"{name} is empty ({Where(source, segments)}): give {Expected(node, name)}";
        var fits = node.Type switch
        {
            _ when node.Type == typeof(int) => int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out _),
            _ when node.Type == typeof(long) => long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out _),
            _ when node.Type == typeof(bool) => bool.TryParse(value, out _),
            _ when node.Type == typeof(double) => double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out _),
            _ => true,
        };
        return fits ? null : $"{name} '{value}' ({Where(source, segments)}) is not {Expected(node, name)}";
    }

    private static string Expected(Value node, string name)
    {
        if (node.Type == typeof(bool)) return "true or false";
        if (node.Type == typeof(string)) return "text";
        if (name.EndsWith(".port", StringComparison.OrdinalIgnoreCase)) return "a port number from 0 to 65535 (0 picks a free one)";
        return Ws2sOptions.Bounds.TryGetValue(name, out var b) ? $"a whole number from {b.Low} to {b.High}" : "a whole number";
    }

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
