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
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--config" && i + 1 < args.Length) return Path.GetFullPath(args[i + 1]);
            if (args[i].StartsWith("--config=", StringComparison.Ordinal)) return Path.GetFullPath(args[i]["--config=".Length..]);
        }
        var fromEnvironment = Environment.GetEnvironmentVariable("WS2S_CONFIG");
        if (!string.IsNullOrEmpty(fromEnvironment)) return Path.GetFullPath(fromEnvironment);
        return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".ws2s", "config.json");
    }

    /// <summary>Creates the file with the defaults when it does not exist yet.</summary>
    public static void EnsureExists(string path)
    {
        if (File.Exists(path)) return;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, Defaults + Environment.NewLine);
    }
}
