using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Ws2s.Host.Configuration;

namespace Ws2s.Host;

/// <summary>
/// The original's commands: <c>ws2sd start</c> (in the background, logging to <c>~/.ws2s/ws2s.log</c>),
/// <c>stop</c>, <c>restart</c>, <c>status</c> (0 running, 3 not, as systemd's), <c>reload</c>
/// (SIGHUP) and <c>service</c> (a systemd unit). The server started in the background writes
/// <c>~/.ws2s/ws2sd.pid</c> once it listens: its pid, then the URLs it listens on; a pid file whose
/// process is gone, or is not ws2sd, is stale and is never trusted.
/// </summary>
internal static class Daemon
{
    private static string Home => Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".ws2s");

    public static string PidFile => Path.Combine(Home, "ws2sd.pid");

    public static string LogFile => Path.Combine(Home, "ws2s.log");

    public const int NotRunning = 3;

    // kill(2): .NET's Process.Kill only sends SIGKILL; SIGTERM (a clean stop) and SIGHUP (reload) need the call itself.
#pragma warning disable SYSLIB1054 // DllImport: LibraryImport would need unsafe code for one int-only call
    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
#pragma warning restore SYSLIB1054

    private const int SigTerm = 15, SigKill = 9, SigHup = 1;

    /// <summary>What the pid file says, if the process it names is a running ws2sd.</summary>
    private static (int Pid, string? Url, string? Management)? Running(out bool stale)
    {
        stale = false;
        if (!File.Exists(PidFile)) return null;
        var lines = File.ReadAllLines(PidFile);
        if (lines.Length == 0 || !int.TryParse(lines[0], CultureInfo.InvariantCulture, out var pid) || !IsWs2sd(pid))
        {
            stale = true;
            return null;
        }
        return (pid, lines.ElementAtOrDefault(1) is { Length: > 0 } url ? url : null, lines.ElementAtOrDefault(2) is { Length: > 0 } m ? m : null);
    }

    private static bool IsWs2sd(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Contains("ws2sd", StringComparison.Ordinal);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>The command that runs this very program (the apphost, or <c>dotnet ws2sd.dll</c>).</summary>
    private static List<string> Self()
    {
        var process = Environment.ProcessPath!;
        return Path.GetFileNameWithoutExtension(process) == "dotnet"
            ? [process, Path.Combine(AppContext.BaseDirectory, "ws2sd.dll")]
            : [process];
    }

    public static async Task<int> StartAsync(string[] args)
    {
        if (Running(out var stale) is { } running)
        {
            Console.Error.WriteLine($"ws2sd is already running (pid {running.Pid}); use ws2sd restart");
            return 1;
        }
        if (stale)
        {
            Console.WriteLine($"removing a stale pid file ({PidFile}: its process is not a running ws2sd)");
            File.Delete(PidFile);
        }
        Directory.CreateDirectory(Home);
        // Its own session (setsid), so the terminal's hangup or Ctrl+C does not reach it; its output goes to the log file.
        var command = Self();
        var setsid = File.Exists("/usr/bin/setsid") ? "/usr/bin/setsid" : null;
        var info = new ProcessStartInfo(setsid ?? command[0])
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var word in (setsid is null ? command.Skip(1) : command).Concat(["run", "--pid-file", PidFile, "--log-file", LogFile]).Concat(args))
            info.ArgumentList.Add(word);
        using var child = Process.Start(info)!;
        child.StandardInput.Close();
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            if (Running(out _) is { } started && started.Pid == child.Id)
            {
                Console.WriteLine($"ws2sd started (pid {started.Pid}), listening on {started.Url}; log: {LogFile}");
                return 0;
            }
            if (child.HasExited)
            {
                Console.Error.WriteLine($"ws2sd could not start (exit code {child.ExitCode}); the end of {LogFile}:");
                foreach (var line in File.Exists(LogFile) ? File.ReadLines(LogFile).TakeLast(5) : []) Console.Error.WriteLine("  " + line);
                return 2;
            }
            await Task.Delay(100); // polling a child process we do not otherwise hear from
        }
        Console.Error.WriteLine($"ws2sd did not report listening within 30 s; see {LogFile}");
        return 2;
    }

    public static async Task<int> StopAsync(string[] args)
    {
        if (Running(out var stale) is not { } running)
        {
            if (stale) File.Delete(PidFile);
            Console.WriteLine(stale ? "ws2sd is not running (removed a stale pid file)" : "ws2sd is not running");
            return 0;
        }
        // SIGTERM: every client gets close 1001 and the server exits within shutdownTimeoutSeconds; SIGKILL after that.
        var patience = TimeSpan.FromSeconds(ShutdownTimeoutSeconds(args) + 5);
        Kill(running.Pid, SigTerm);
        var clock = Stopwatch.StartNew();
        while (IsWs2sd(running.Pid) && clock.Elapsed < patience) await Task.Delay(100); // waiting for another process to exit
        if (IsWs2sd(running.Pid))
        {
            Kill(running.Pid, SigKill);
            Console.WriteLine($"ws2sd (pid {running.Pid}) did not stop within {patience.TotalSeconds:0} s: killed");
        }
        else
        {
            Console.WriteLine($"ws2sd stopped (pid {running.Pid})");
        }
        if (File.Exists(PidFile) && Running(out _) is null) File.Delete(PidFile);
        return 0;
    }

    private static int ShutdownTimeoutSeconds(string[] args)
    {
        try
        {
            return Ws2sServer.ReadOptions(new Microsoft.Extensions.Configuration.ConfigurationBuilder(), ConfigFile.Locate(args), args).ShutdownTimeoutSeconds;
        }
        catch (ConfigException)
        {
            return 10;
        }
    }

    public static async Task<int> StatusAsync()
    {
        if (Running(out var stale) is not { } running)
        {
            Console.WriteLine(stale ? $"ws2sd is not running (stale pid file {PidFile})" : "ws2sd is not running");
            return NotRunning;
        }
        Console.WriteLine($"ws2sd is running (pid {running.Pid})");
        if (running.Url is { } url) Console.WriteLine($"listening on {url}");
        if (await ActiveSessionsAsync(running.Url, running.Management) is { } sessions) Console.WriteLine($"active sessions: {sessions}");
        return 0;
    }

    /// <summary><c>ws2s_sessions_active</c> from the server's /metrics (the management port's when it has one).</summary>
    private static async Task<long?> ActiveSessionsAsync(string? url, string? management)
    {
        var baseUrl = management ?? url?.Replace("wss://", "https://", StringComparison.Ordinal).Replace("ws://", "http://", StringComparison.Ordinal);
        if (baseUrl is null) return null;
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        // A server listening only with TLS would present a certificate for its public name, not 127.0.0.1.
        try
        {
            var text = await http.GetStringAsync(new Uri(new Uri(baseUrl), "/metrics"));
            var line = text.Split('\n').FirstOrDefault(l => l.StartsWith("ws2s_sessions_active", StringComparison.Ordinal));
            return line is null ? null : (long)double.Parse(line.Split(' ')[^1], CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or FormatException)
        {
            return null;
        }
    }

    public static int Reload()
    {
        if (Running(out _) is not { } running)
        {
            Console.WriteLine("ws2sd is not running");
            return NotRunning;
        }
        Kill(running.Pid, SigHup);
        Console.WriteLine($"reload requested (pid {running.Pid}); whether the new configuration took is in {LogFile}");
        return 0;
    }

    /// <summary>Installs and enables a systemd unit for this user (or for the system, as root); <c>--dry-run</c> prints it.</summary>
    public static int Service(string[] args)
    {
        var dryRun = args.Contains("--dry-run");
        var system = Environment.UserName == "root";
        var unitPath = system ? "/etc/systemd/system/ws2sd.service"
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config", "systemd", "user", "ws2sd.service");
        var exec = string.Join(' ', Self().Select(w => w.Contains(' ') ? $"\"{w}\"" : w)) + " run" + (args.Any(a => a != "--dry-run") ? " " + string.Join(' ', args.Where(a => a != "--dry-run")) : "");
        var unit = $"""
            # Written by `ws2sd service`.
            [Unit]
            Description=ws2s: WebSocket to TCP bridge
            After=network-online.target
            Wants=network-online.target

            [Service]
            Type=exec
            ExecStart={exec}
            ExecReload=/bin/kill -HUP $MAINPID
            KillSignal=SIGTERM
            TimeoutStopSec=30
            Restart=on-failure
            RestartPreventExitStatus=2
            LimitNOFILE=65536

            [Install]
            WantedBy={(system ? "multi-user.target" : "default.target")}

            """;
        var systemctl = system ? "systemctl" : "systemctl --user";
        var hasSystemd = Directory.Exists("/run/systemd/system");
        if (dryRun)
        {
            Console.WriteLine($"would write {unitPath}:\n\n{unit}\nthen run: {systemctl} daemon-reload && {systemctl} enable --now ws2sd");
            if (!hasSystemd) Console.WriteLine("(systemd is not running on this machine: without --dry-run, ws2sd service refuses)");
            return 0;
        }
        if (!hasSystemd)
        {
            Console.Error.WriteLine("ws2sd service: systemd is not running on this machine (no /run/systemd/system). " +
                "Start ws2sd with `ws2sd start`, or write a unit for your init system (deploy/ws2s.service is one).");
            return 2;
        }
        Directory.CreateDirectory(Path.GetDirectoryName(unitPath)!);
        File.WriteAllText(unitPath, unit);
        foreach (var step in new[] { "daemon-reload", "enable --now ws2sd" })
        {
            var info = new ProcessStartInfo("systemctl");
            if (!system) info.ArgumentList.Add("--user");
            foreach (var word in step.Split(' ')) info.ArgumentList.Add(word);
            using var run = Process.Start(info)!;
            run.WaitForExit();
            if (run.ExitCode != 0)
            {
                Console.Error.WriteLine($"ws2sd service: `{systemctl} {step}` failed (exit code {run.ExitCode})");
                return 2;
            }
        }
        Console.WriteLine($"installed {unitPath} and enabled ws2sd ({systemctl} status ws2sd)");
        return 0;
    }

    public const string Help = """
        ws2sd: a WebSocket to TCP bridge (the ws2s protocol, and websockify at /websockify)

        The original's commands:
          ws2sd start           start the server in the background (log: ~/.ws2s/ws2s.log, pid: ~/.ws2s/ws2sd.pid)
          ws2sd stop            stop it (clients get close 1001; SIGKILL after shutdownTimeoutSeconds)
          ws2sd restart         stop, then start (after editing ~/.ws2s/config.json; `reload` keeps sessions)
          ws2sd status          running or not, pid, listen address, active sessions (exit 0 running, 3 not)
          ws2sd service         install and enable a systemd unit (--dry-run prints it)

        And:
          ws2sd [run]           serve in the foreground (the default; stop with Ctrl+C or SIGTERM)
          ws2sd reload          re-read the configuration without dropping anyone (also SIGHUP, or editing the file)
          ws2sd probe URL       exit 0 if URL answers 2xx (a health check, e.g. http://127.0.0.1:3614/readyz)
          ws2sd help | --help | --version

        Options (run, start, restart, service):
          --config PATH       the configuration file (default ~/.ws2s/config.json, or $WS2S_CONFIG)
          --log-format json   one JSON object per log line
          --listen:port 4000  any configuration key can be set this way, e.g. --limits:idleTimeoutSeconds 60

        Exit codes: 0 done, 2 bad configuration or cannot listen, 3 not running (status, reload).
        """;
}
