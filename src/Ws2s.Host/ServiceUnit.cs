using System.Text;
using Ws2s.Host.Configuration;

namespace Ws2s.Host;

/// <summary>
/// The systemd unit <c>ws2sd service</c> writes. For the system (as root): ws2sd sandboxed under a user of
/// its own, reading <c>/etc/ws2s/config.json</c>, which the unit writes with the defaults at the first start,
/// so that it starts on a fresh machine; <c>deploy/ws2sd.service</c> is this unit for
/// <c>/opt/ws2s/ws2sd</c> (a test holds them equal). For a user: the same service with the part of the
/// sandbox a user's service manager can set up, reading <c>~/.ws2s/config.json</c>.
/// </summary>
internal static class ServiceUnit
{
    public const string SystemConfig = "/etc/ws2s/config.json";

    /// <summary>Directories a system service does not see, and the setting that hides each.</summary>
    private static readonly (string Folder, string Why)[] Hidden =
    [
        ("/root", "ProtectHome=yes"), ("/home", "ProtectHome=yes"), ("/run/user", "ProtectHome=yes"),
        ("/tmp", "PrivateTmp=yes gives it a /tmp of its own"), ("/var/tmp", "PrivateTmp=yes gives it a /var/tmp of its own"),
    ];

    /// <param name="command">The program and the words that run it (the apphost, or <c>dotnet ws2sd.dll</c>).</param>
    /// <param name="args">Extra arguments for <c>ws2sd run</c> (<c>--listen:port 4000</c>).</param>
    /// <param name="dotnetRoot">DOTNET_ROOT, when the apphost needs it to find .NET.</param>
    public static string Text(IReadOnlyList<string> command, IReadOnlyList<string> args, bool system, string? dotnetRoot)
    {
        // The journal keeps a system service's lines as JSON objects, unless the installer chose a format.
        var format = system && !args.Any(a => a == "--log-format" || a.StartsWith("--log-format=", StringComparison.Ordinal)) ? ["--log-format", "json"] : Array.Empty<string>();
        var run = string.Join(' ', command.Concat(["run"]).Concat(format).Concat(args).Select(Word));
        var unit = new StringBuilder();
        void Line(string text = "") => unit.Append(text).Append('\n');
        if (system)
        {
            Line("# ws2s as a systemd service. `ws2sd service`, run as root, writes this unit to");
            Line("# /etc/systemd/system/ws2sd.service for the ws2sd it is run from; deploy/ws2sd.service is the same");
            Line("# unit for ws2sd in /opt/ws2s. On a fresh machine, as root:");
            Line("#   dotnet tool install --tool-path /opt/ws2s ws2s    (--add-source ./nupkg for a local dotnet pack)");
            Line("#   /opt/ws2s/ws2sd service");
            Line("# It runs as a user of its own, reads /etc/ws2s/config.json (written with the defaults at the first");
            Line("# start; edits are picked up without a restart) and logs to the journal: journalctl -u ws2sd.");
        }
        else
        {
            Line("# ws2s as a systemd user service. `ws2sd service`, run as a user, writes this unit to");
            Line("# ~/.config/systemd/user/ws2sd.service for the ws2sd it was run from. It reads ~/.ws2s/config.json");
            Line("# (written with the defaults at the first start) and logs to the journal: journalctl --user -u ws2sd.");
            Line("# It runs while you are logged in; `loginctl enable-linger` keeps it running when you are not.");
        }
        Line("[Unit]");
        Line("Description=ws2s: WebSocket to TCP bridge");
        if (system)
        {
            Line("After=network-online.target");
            Line("Wants=network-online.target");
        }
        Line();
        Line("[Service]");
        Line("Type=exec");
        if (dotnetRoot is not null) Line($"Environment={Word("DOTNET_ROOT=" + dotnetRoot)}");
        Line($"ExecStart={run}");
        Line("ExecReload=/bin/kill -HUP $MAINPID");
        Line("# SIGTERM: every client gets close 1001, then the process exits within shutdownTimeoutSeconds.");
        Line("KillSignal=SIGTERM");
        Line("TimeoutStopSec=30");
        Line("Restart=on-failure");
        Line($"# Exit code 2 is a configuration error: restarting will not fix it (journalctl{(system ? "" : " --user")} -u ws2sd says what).");
        Line("RestartPreventExitStatus=2");
        Line("LimitNOFILE=65536");
        if (system)
        {
            var config = ConfigPath(args);
            Line("# A user of its own, made at start. If a system user ws2s exists, it is used instead: make one");
            Line("# (useradd --system --no-create-home ws2s) to give the service files such as TLS keys or a token");
            Line("# file without showing them to everyone: chgrp ws2s FILE && chmod 640 FILE.");
            Line("DynamicUser=yes");
            Line("User=ws2s");
            Line("# /etc/ws2s, made by systemd and owned by root: the service reads its configuration, never writes it.");
            Line("ConfigurationDirectory=ws2s");
            Line($"Environment=WS2S_CONFIG={SystemConfig}");
            Line("# The first start writes the defaults, as ws2sd does in ~/.ws2s for a user (\"+\": as root, outside the sandbox).");
            Line("ExecStartPre=+/bin/sh -c " + Word("umask 022 && mkdir -p \"${1%/*}\" && if [ ! -e \"$1\" ]; then echo \"$2\" > \"$1\"; fi") + $" ws2sd {Word(config)} {Word(ConfigFile.Defaults.Trim())}");
            Line("# The sandbox. Not MemoryDenyWriteExecute=: .NET's JIT writes the code it runs. To listen on a port");
            Line("# below 1024, add CAP_NET_BIND_SERVICE to CapabilityBoundingSet= and AmbientCapabilities=.");
            Line("CapabilityBoundingSet=");
            Line("AmbientCapabilities=");
            Line("NoNewPrivileges=yes");
            Line("ProtectSystem=strict");
            Line("ProtectHome=yes");
            Line("PrivateTmp=yes");
            Line("PrivateDevices=yes");
            Line("ProtectKernelTunables=yes");
            Line("ProtectKernelModules=yes");
            Line("ProtectKernelLogs=yes");
            Line("ProtectControlGroups=yes");
            Line("ProtectClock=yes");
            Line("ProtectHostname=yes");
            Line("ProtectProc=invisible");
            Line("RemoveIPC=yes");
        }
        else
        {
            Line("# The sandbox a user's service manager can set up (the files are the user's own).");
            Line("NoNewPrivileges=yes");
        }
        Line("RestrictNamespaces=yes");
        Line("RestrictRealtime=yes");
        Line("RestrictSUIDSGID=yes");
        Line("LockPersonality=yes");
        Line("RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK");
        Line("SystemCallArchitectures=native");
        Line("SystemCallFilter=@system-service");
        Line("SystemCallFilter=~@privileged");
        Line("SystemCallErrorNumber=EPERM");
        Line("UMask=0077");
        Line();
        Line("[Install]");
        Line($"WantedBy={(system ? "multi-user.target" : "default.target")}");
        return unit.ToString();
    }

    /// <summary>The configuration file the system service reads: <c>--config</c> when given, else <see cref="SystemConfig"/>.</summary>
    public static string ConfigPath(IReadOnlyList<string> args) => ConfigFile.Given(args) ?? SystemConfig;

    /// <summary>
    /// One word of a systemd command line: as it is when plain, else quoted so that systemd hands the program
    /// exactly <paramref name="word"/> (<c>%</c> and <c>$</c> doubled: systemd would expand them).
    /// </summary>
    public static string Word(string word)
    {
        if (word.Length > 0 && word.All(c => char.IsAsciiLetterOrDigit(c) || "/._-:=@+,".Contains(c))) return word;
        var escaped = word.Replace("%", "%%").Replace("$", "$$");
        if (!escaped.Contains('\'') && !escaped.Contains('\\') && !escaped.Any(char.IsControl)) return $"'{escaped}'";
        var quoted = new StringBuilder("\"");
        foreach (var c in escaped)
            quoted.Append(c switch { '"' => "\\\"", '\\' => "\\\\", '\n' => "\\n", '\t' => "\\t", _ when char.IsControl(c) => $"\\x{(int)c:x2}", _ => c.ToString() });
        return quoted.Append('"').ToString();
    }

    /// <summary>
    /// Why a service under a user of its own could not run from <paramref name="paths"/> (the program, the
    /// .NET it needs), or null: each must be outside the folders <c>ProtectHome=</c> hides, and every folder
    /// on the way must let other users through, the file itself read.
    /// </summary>
    public static string? Unreachable(IEnumerable<string> paths)
    {
        if (OperatingSystem.IsWindows()) return null; // no systemd there
        foreach (var path in paths.Select(Path.GetFullPath))
        {
            if (Hidden.FirstOrDefault(h => path == h.Folder || path.StartsWith(h.Folder + "/", StringComparison.Ordinal)) is { Folder: { } folderHidden } hidden)
                return $"{path} is under {folderHidden}, which the service does not see ({hidden.Why})";
            for (var folder = Path.GetDirectoryName(path); !string.IsNullOrEmpty(folder); folder = Path.GetDirectoryName(folder))
                if (Directory.Exists(folder) && !File.GetUnixFileMode(folder).HasFlag(UnixFileMode.OtherExecute))
                    return $"{folder} lets no other user in (mode {Mode(folder)}), so the service's user cannot reach {path}";
            if ((File.Exists(path) || Directory.Exists(path)) && !File.GetUnixFileMode(path).HasFlag(UnixFileMode.OtherRead))
                return $"{path} is not readable by other users (mode {Mode(path)})";
        }
        return null;
    }

    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static string Mode(string path) => Convert.ToString((int)File.GetUnixFileMode(path), 8).PadLeft(4, '0');
}
