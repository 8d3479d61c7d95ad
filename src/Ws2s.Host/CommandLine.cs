using Microsoft.Extensions.Configuration;
using Ws2s.AspNetCore.Configuration;
using Ws2s.Host.Configuration;

namespace Ws2s.Host;

/// <summary>
/// ws2sd's command line: a command, then options. Anything it does not know — a command (<c>stauts</c>), an
/// option (<c>--port</c>, <c>-p</c>), a stray word, an option without its value — is a usage error (exit 2)
/// that says what was wrong and what was probably meant, never a server started with the mistake ignored.
/// </summary>
internal static class CommandLine
{
    public const string Usage =
        "usage: ws2sd [run|start|stop|restart|status|reload|service|probe URL|help] [--config PATH] [--log-format json|text] [--KEY:SUBKEY VALUE …]";

    private static readonly string[] Commands = ["run", "start", "stop", "restart", "status", "reload", "service", "probe", "help"];

    /// <summary>Options of the program itself, by the commands that take them (all others are configuration keys).</summary>
    private static readonly Dictionary<string, string[]> ProgramOptions = new()
    {
        ["config"] = ["run", "start", "restart", "stop", "service"],
        ["log-format"] = ["run", "start", "restart", "service"],
        ["log-file"] = ["run"],
        ["pid-file"] = ["run"],
        ["dry-run"] = ["service"],
    };

    /// <summary>What is wrong with <paramref name="args"/> (after <c>--help</c> and <c>--version</c> were handled), or null.</summary>
    public static string? Problem(string[] args)
    {
        if (args.Length == 0) return null;
        var command = args[0].StartsWith('-') ? "run" : args[0];
        if (!Commands.Contains(command))
        {
            var near = Commands.OrderBy(c => Ws2sConfigKeys.Distance(command, c)).First();
            return $"unknown command '{command}'" + (Ws2sConfigKeys.Distance(command, near) <= 2 ? $"; did you mean '{near}'?" : "");
        }
        var rest = args[0].StartsWith('-') ? args : args[1..];
        if (command == "probe") return rest.Length == 1 && !rest[0].StartsWith('-') ? null : "probe takes one URL (ws2sd probe http://127.0.0.1:3614/readyz)";
        if (command == "help") return null;
        var settings = new List<string>();
        for (var i = 0; i < rest.Length; i++)
        {
            var arg = rest[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal) || arg.Length == 2)
                return arg.StartsWith('-') ? $"unknown option '{arg}' (options are spelt --NAME)" : $"unexpected argument '{arg}' after {command}";
            var name = arg[2..].Split('=')[0];
            var inline = arg.Contains('=', StringComparison.Ordinal);
            if (ProgramOptions.TryGetValue(name, out var commands))
            {
                if (!commands.Contains(command)) return $"ws2sd {command} does not take --{name}";
                if (name == "dry-run")
                {
                    if (inline) return "--dry-run takes no value";
                    continue;
                }
            }
            else if (command is "status" or "reload")
                return $"ws2sd {command} takes no options (it acts on the running server, with the configuration it was started with)";
            if (!inline && (i + 1 == rest.Length || rest[i + 1].StartsWith("--", StringComparison.Ordinal)))
                return $"--{name} needs a value (--{name} VALUE or --{name}=VALUE)";
            var value = inline ? null : rest[++i];
            if (commands is not null) continue;
            settings.Add(arg);
            if (value is not null) settings.Add(value);
        }
        // Every other option sets a configuration key: judged as the server judges keys, with the nearest known one.
        var keys = ConfigFile.KeyProblems(new ConfigurationBuilder().AddCommandLine([.. settings]).Build());
        return keys.Count > 0 ? string.Join("; ", keys) : null;
    }
}
