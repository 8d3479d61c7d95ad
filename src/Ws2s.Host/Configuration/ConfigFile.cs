using Microsoft.Extensions.Configuration;
using Ws2s.AspNetCore.Configuration;

namespace Ws2s.Host.Configuration;

/// <summary>One reading of the configuration: its sources, and what was bound from them (the library's options and ws2sd's own).</summary>
public sealed record LoadedConfig(IConfigurationRoot Root, Ws2sOptions Options, ServerOptions Server);

/// <summary>Where the configuration file is, its first-run contents (the original's file and defaults), and reading it with every other source.</summary>
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

    /// <summary>
    /// Top-level keys the program reads besides <see cref="Ws2sOptions"/> and <see cref="ServerOptions"/>: the config file's
    /// path, the log format (<c>logFormat</c> in a file, <c>--log-format</c> on the command line) and the <c>Logging</c> section.
    /// </summary>
    public static readonly string[] ProgramKeys = ["config", "logFormat", "log-format", "Logging"];

    /// <summary>ws2sd's own options, bound from the same file as the library's: the key check knows their keys.</summary>
    private static readonly Ws2sConfigKeys.KeySource ServerKeys = new(typeof(ServerOptions), ServerOptions.Ranges);

    /// <summary>Every key of the file in its spelling (<c>listen.port</c>, <c>endpoints[].host</c>, <c>rawTargets.*</c>): the library's and ws2sd's.</summary>
    public static IEnumerable<string> KnownKeys() => Ws2sConfigKeys.All(ServerKeys);

    /// <summary>The key check of <paramref name="configuration"/> (a key nothing reads, a value of the wrong kind), in words.</summary>
    public static IReadOnlyList<string> KeyProblems(IConfigurationRoot configuration) =>
        Ws2sConfigKeys.Problems(configuration, null, [ServerKeys], ProgramKeys);

    /// <summary>
    /// Reads the configuration the way the server does — the file, then <c>WS2S_*</c> environment
    /// variables, then the command line — into <paramref name="configuration"/>, checks every key and value,
    /// and binds it. Throws <see cref="ConfigException"/> naming each problem, where it was set and what to do:
    /// a file that is not JSON (line and column), a key nothing reads, a value of the wrong kind or range.
    /// </summary>
    public static LoadedConfig Read(IConfigurationBuilder configuration, string configPath, string[] args)
    {
        IConfigurationRoot root;
        try
        {
            configuration
                // Framework categories log warnings and up unless the config says otherwise.
                .AddInMemoryCollection([new("Logging:LogLevel:Microsoft", "Warning")])
                .AddJsonFile(configPath, optional: false, reloadOnChange: false)
                .AddEnvironmentVariables("WS2S_")
                .AddCommandLine(args);
            root = configuration as IConfigurationRoot ?? configuration.Build();
        }
        catch (Exception e) when (e is InvalidDataException or FormatException)
        {
            throw new ConfigException(NotJson(configPath, e));
        }
        catch (FileNotFoundException)
        {
            throw new ConfigException($"{configPath} does not exist");
        }
        var problems = KeyProblems(root).ToList();
        if (LogFormat(root) is { } format && format is not ("json" or "text"))
            problems.Add($"logFormat '{format}'{Ws2sConfigKeys.WhereSet(root, root["log-format"] is null ? "logFormat" : "log-format")} must be json or text");
        if (problems.Count > 0) throw new ConfigException(problems);
        var options = new Ws2sOptions();
        var server = new ServerOptions();
        try
        {
            root.Bind(options);
            root.Bind(server);
        }
        catch (InvalidOperationException e)
        {
            throw new ConfigException(e.Message);
        }
        problems = server.Problems().Concat(options.Problems()).Select(p => p + Ws2sConfigKeys.WhereSet(root, p)).ToList();
        if (problems.Count > 0) throw new ConfigException(problems);
        return new(root, options, server);
    }

    /// <summary><c>--log-format</c> or <c>logFormat</c>, lower case, if set.</summary>
    internal static string? LogFormat(IConfiguration configuration) =>
        (configuration["log-format"] ?? configuration["logFormat"])?.ToLowerInvariant();

    /// <summary>Why a config file is not JSON, with the line and column where reading stopped.</summary>
    private static string NotJson(string configPath, Exception e)
    {
        for (var inner = e; inner is not null; inner = inner.InnerException)
            if (inner is System.Text.Json.JsonException { LineNumber: { } line } json)
            {
                var words = json.Message.Split(" Path:")[0].Split(" LineNumber:")[0].TrimEnd('.', ' ', '|');
                return $"{configPath} is not valid JSON: line {line + 1}, column {(json.BytePositionInLine ?? 0) + 1}: {words}";
            }
        var deepest = e;
        while (deepest.InnerException is not null) deepest = deepest.InnerException;
        return $"{configPath} is not valid JSON: {deepest.Message}";
    }
}
