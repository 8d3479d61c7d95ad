namespace Ws2s.Host.Configuration;

/// <summary>Where the configuration file is, and its first-run contents (the original's file and defaults).</summary>
public static class ConfigFile
{
    public const string Defaults = """
        {"listen":{"host":"127.0.0.1","port":3613},"allowConnectToServerLocal":false}
        """;

    /// <summary><c>--config PATH</c>, else <c>WS2S_CONFIG</c>, else <c>~/.ws2s/config.json</c>.</summary>
    public static string Locate(string[] args)
    {
        if (Given(args) is { } given) return given;
        var fromEnvironment = Variable();
        if (!string.IsNullOrEmpty(fromEnvironment)) return Path.GetFullPath(fromEnvironment);
        return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".ws2s", "config.json");
    }

    /// <summary>
    /// The file <c>--config PATH</c> (or <c>--config=PATH</c>) names, or null. In any case, as every other key is read
    /// (<c>--Listen:Port</c>): the key check lets <c>--Config</c> through, so it must not then be ignored.
    /// </summary>
    public static string? Given(IReadOnlyList<string> args)
    {
        for (var i = 0; i < args.Count; i++)
        {
            if (args[i].Equals("--config", StringComparison.OrdinalIgnoreCase) && i + 1 < args.Count) return Path.GetFullPath(args[i + 1]);
            if (args[i].StartsWith("--config=", StringComparison.OrdinalIgnoreCase)) return Path.GetFullPath(args[i]["--config=".Length..]);
        }
        return null;
    }

    /// <summary><c>WS2S_CONFIG</c> in any case, as the configuration's environment source reads <c>WS2S_</c> variables (the exact spelling first).</summary>
    private static string? Variable() =>
        Environment.GetEnvironmentVariable("WS2S_CONFIG")
        ?? Environment.GetEnvironmentVariables().Keys.Cast<string>().Where(k => k.Equals("WS2S_CONFIG", StringComparison.OrdinalIgnoreCase))
            .Order(StringComparer.Ordinal).Select(Environment.GetEnvironmentVariable).FirstOrDefault();

    /// <summary>Creates the file with the defaults when it does not exist yet.</summary>
    public static void EnsureExists(string path)
    {
        if (File.Exists(path)) return;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, Defaults + Environment.NewLine);
    }
}
