using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.CommandLine;
using Microsoft.Extensions.Configuration.EnvironmentVariables;

namespace Ws2s.AspNetCore.Configuration;

/// <summary>The words of the key check: a key in the config's spelling, where it was set, and how its source would spell another.</summary>
internal static partial class Ws2sConfigKeys
{
    /// <summary>Where keys come from: a source, and the section they were read under (its path is part of how the source spells them).</summary>
    private sealed record Origin(IConfigurationProvider Provider, string[] Section);

    /// <summary>A list's first item set the way <paramref name="source"/> sets keys (a file gets the command line's form).</summary>
    private static string ItemExample(Origin source, string[] segments, string value) => source.Provider switch
    {
        EnvironmentVariablesConfigurationProvider => $"in the environment {Example(source, [.. segments, "0"])}={value}",
        _ => $"on the command line {Example(source, [.. segments, "0"])} {value}",
    };

    /// <summary>A key in the config's spelling: segments joined by dots, list items in brackets.</summary>
    private static string Name(IEnumerable<string> segments) =>
        string.Join(".", segments.Select(s => int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out _) ? $"[{s}]" : s)).Replace(".[", "[", StringComparison.Ordinal);

    /// <summary>Where a key was set, in that source's own syntax.</summary>
    private static string Where(Origin source, string[] segments) => Where(source.Provider, [.. source.Section, .. segments]);

    private static string Where(IConfigurationProvider source, string[] segments) => source switch
    {
        CommandLineConfigurationProvider => $"on the command line as --{string.Join(':', segments)}",
        EnvironmentVariablesConfigurationProvider => $"in the environment as {EnvironmentPrefix(source)}{string.Join("__", segments)}",
        FileConfigurationProvider file => $"in {file.Source.FileProvider?.GetFileInfo(file.Source.Path ?? "").PhysicalPath ?? file.Source.Path}",
        _ => $"in {source}",
    };

    /// <summary>The same key as <paramref name="source"/> would spell it (<c>--listen:port</c>, <c>WS2S_listen__port</c>), or nothing for a file.</summary>
    private static string Spelling(Origin source, string key) =>
        Spelled(source.Provider, string.Concat(source.Section.Select(s => s + ".")) + key.Replace("[", ".", StringComparison.Ordinal).Replace("]", "", StringComparison.Ordinal));

    private static string Spelled(IConfigurationProvider source, string dotted) => source switch
    {
        CommandLineConfigurationProvider => $" (--{dotted.Replace('.', ':')})",
        EnvironmentVariablesConfigurationProvider => $" ({EnvironmentPrefix(source)}{dotted.Replace(".", "__", StringComparison.Ordinal)})",
        _ => "",
    };

    private static string Example(Origin origin, string[] relative) => Example(origin.Provider, [.. origin.Section, .. relative]);

    private static string Example(IConfigurationProvider source, string[] segments) => source switch
    {
        EnvironmentVariablesConfigurationProvider => $"{EnvironmentPrefix(source)}{string.Join("__", segments)}",
        _ => $"--{string.Join(':', segments)}",
    };

    /// <summary>The prefix an environment source strips (it says so only in its description).</summary>
    private static string EnvironmentPrefix(IConfigurationProvider source) =>
        PrefixPattern().Match(source.ToString() ?? "") is { Success: true } m ? m.Groups[1].Value : "";

    [GeneratedRegex("Prefix: '([^']*)'")]
    private static partial Regex PrefixPattern();

    /// <summary>
    /// Where the key a problem begins with (<c>listen.port 70000 …</c>, <c>endpoints[0]: …</c>) was set, as
    /// <c>(on the command line as --listen:port)</c>; empty when no source sets it (a default).
    /// </summary>
    public static string WhereSet(IConfigurationRoot configuration, string problem)
    {
        var key = LeadingKey().Match(problem);
        if (!key.Success) return "";
        var path = key.Value.Replace("[", ".", StringComparison.Ordinal).Replace("]", "", StringComparison.Ordinal).Split('.');
        foreach (var provider in configuration.Providers.Reverse())
        {
            var prefix = string.Join(ConfigurationPath.KeyDelimiter, path);
            if (provider.TryGet(prefix, out _) || provider.GetChildKeys([], prefix).Any())
                return $" ({Where(provider, path)})";
        }
        return "";
    }

    [GeneratedRegex(@"^[A-Za-z][A-Za-z0-9]*(\[\d+\])?(\.[A-Za-z][A-Za-z0-9]*(\[\d+\])?)*")]
    private static partial Regex LeadingKey();
}
