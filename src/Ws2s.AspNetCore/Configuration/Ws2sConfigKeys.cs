using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;

namespace Ws2s.AspNetCore.Configuration;

/// <summary>
/// The keys <see cref="Ws2sOptions"/> knows (and those of options bound beside it from the same configuration, such
/// as ws2sd's listeners: <see cref="KeySource"/>), learnt from their properties, and a check of configuration
/// against them before it is bound: a key nobody reads (<c>destinatons</c>, <c>--listne:port</c>) or a
/// value of the wrong kind (<c>--listen:port abc</c>) is named in the config's own spelling
/// (<c>listen.port</c>), with where it was set (which file, variable or option) and what to do — rather
/// than being ignored, which can silently leave a machine open.
/// </summary>
internal static partial class Ws2sConfigKeys
{
    /// <summary>What a configuration key may hold: a value, an object of known keys, a list, or a map of any names.</summary>
    private abstract record Node;

    /// <summary>A value; <paramref name="Range"/>: the numbers it accepts, when its options say (for the words).</summary>
    private sealed record Value(Type Type, bool Nullable, (long Low, long High)? Range = null) : Node;

    private sealed record Section(IReadOnlyDictionary<string, Node> Keys) : Node;

    private sealed record ListOf(Node Item) : Node;

    private sealed record MapOf(Node Item) : Node;

    /// <summary>A key whose content someone else checks (the logging section, a program's own options).</summary>
    private sealed record Anything : Node;

    /// <summary>ws2s's own options, and the numbers each of its numeric keys accepts.</summary>
    private static readonly KeySource Library = new(typeof(Ws2sOptions),
        Ws2sOptions.Bounds.ToDictionary(b => b.Key, b => (b.Value.Low, b.Value.High), StringComparer.OrdinalIgnoreCase));

    /// <summary>The top-level keys of ws2s's options and of <paramref name="also"/>, bound from the same configuration.</summary>
    private static Section Root(IEnumerable<KeySource> also)
    {
        var keys = new Dictionary<string, Node>(StringComparer.OrdinalIgnoreCase);
        foreach (var source in also.Prepend(Library))
            foreach (var (key, node) in ((Section)NodeOf(source.Options, "", source.Ranges)).Keys)
                keys[key] = node;
        return new Section(keys);
    }

    /// <summary>
    /// Every key of <see cref="Ws2sOptions"/> and of <paramref name="also"/> in the config's spelling (<c>limits.maxSessions</c>,
    /// <c>tls.pinned[].rule</c>, <c>rawTargets.*</c>).
    /// </summary>
    public static IEnumerable<string> All(params KeySource[] also) => Paths(Root(also), "");

    private static IEnumerable<string> Paths(Node node, string prefix) => node switch
    {
        Section section => section.Keys.SelectMany(k => Paths(k.Value, Join(prefix, k.Key)).Prepend(Join(prefix, k.Key))).Distinct(),
        ListOf list => Paths(list.Item, prefix + "[]"),
        MapOf map => Paths(map.Item, Join(prefix, "*")).Prepend(Join(prefix, "*")),
        _ => [],
    };

    /// <summary>Options bound from the same configuration as <see cref="Ws2sOptions"/>: their type, and the numbers each numeric key accepts (<c>shutdownTimeoutSeconds</c>: 0 to 3600).</summary>
    internal sealed record KeySource(Type Options, IReadOnlyDictionary<string, (long Low, long High)> Ranges);

    private static string Join(string prefix, string key) => prefix.Length == 0 ? key : prefix + "." + key;

    private static Node NodeOf(Type type, string path, IReadOnlyDictionary<string, (long Low, long High)> ranges)
    {
        (long, long)? Range() => ranges.TryGetValue(path, out var range) ? range : null;
        if (Nullable.GetUnderlyingType(type) is { } inner) return new Value(inner, true, Range());
        if (type == typeof(string)) return new Value(type, true);
        if (type.IsPrimitive || type.IsEnum || type == typeof(decimal)) return new Value(type, false, Range());
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(List<>)) return new ListOf(NodeOf(type.GetGenericArguments()[0], path + "[]", ranges));
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(Dictionary<,>)) return new MapOf(NodeOf(type.GetGenericArguments()[1], Join(path, "*"), ranges));
        var keys = new Dictionary<string, Node>(StringComparer.OrdinalIgnoreCase);
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
            if (property.SetMethod is { IsPublic: true })
            {
                var key = char.ToLowerInvariant(property.Name[0]) + property.Name[1..];
                keys[key] = NodeOf(property.PropertyType, Join(path, key), ranges);
            }
        return new Section(keys);
    }

    /// <summary>
    /// Every key in <paramref name="configuration"/> that <see cref="Ws2sOptions"/> does not know, and every value
    /// that cannot become what its key holds, each in words that name the key, where it was set, and what to do.
    /// <paramref name="others"/>: top-level keys that are not ws2s options but are read by someone else (the
    /// program's <c>logFormat</c>, the <c>Logging</c> section); what is below them is not checked here.
    /// </summary>
    public static IReadOnlyList<string> Problems(IConfigurationRoot configuration, params string[] others) => Problems(configuration, null, [], others);

    /// <summary>
    /// The same for the keys under <paramref name="section"/> (an app's <c>"Ws2s"</c> section bound to
    /// <see cref="Ws2sOptions"/>), named where they were set by their whole path (<c>--Ws2s:listen:port</c>).
    /// </summary>
    public static IReadOnlyList<string> Problems(IConfigurationRoot configuration, string? section, params string[] others) =>
        Problems(configuration, section, [], others);

    /// <summary>The same, where <paramref name="also"/> are bound from the configuration too (ws2sd's listeners): their keys are known.</summary>
    public static IReadOnlyList<string> Problems(IConfigurationRoot configuration, string? section, IReadOnlyCollection<KeySource> also, params string[] others)
    {
        var top = new Dictionary<string, Node>(Root(also).Keys, StringComparer.OrdinalIgnoreCase);
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
        return node.Range is { } b ? $"a whole number from {b.Low} to {b.High}" : "a whole number";
    }
}
