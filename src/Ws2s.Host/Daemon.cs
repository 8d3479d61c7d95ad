using System.Diagnostics;
using Ws2s.Host.Configuration;

namespace Ws2s.Host;

/// <summary>
/// The original's commands: <c>ws2sd start</c> (in the background, logging to <c>~/.ws2s/ws2s.log</c>),
/// <c>stop</c>, <c>restart</c>, <c>status</c> (0 running, 3 not, as systemd's), <c>reload</c>
/// (SIGHUP) and <c>service</c> (a systemd unit). The server started in the background holds
/// <c>~/.ws2s/ws2sd.lock</c> (<see cref="InstanceLock"/>): the process holding it is this home's ws2sd,
/// the only one these commands signal. Once listening it writes <c>~/.ws2s/ws2sd.pid</c>: its pid, then
/// the URLs it listens on; a pid file that does not name the lock's holder is stale and never trusted,
/// and no address in it is ever dialled. Links in <c>~/.ws2s</c> are refused, never followed.
/// </summary>
internal static partial class Daemon
{
    private static string Home => Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".ws2s");

    public static string PidFile => Path.Combine(Home, "ws2sd.pid");

    public static string LogFile => Path.Combine(Home, "ws2s.log");

    /// <summary>The lock the background server holds: next to its pid file, so <c>run --pid-file</c> finds it too.</summary>
    public static string LockFileOf(string pidFile) => Path.Combine(Path.GetDirectoryName(Path.GetFullPath(pidFile))!, "ws2sd.lock");

    private static string LockFile => LockFileOf(PidFile);

    public const int NotRunning = 3;

    /// <summary>The exit code for a link in <c>~/.ws2s</c> (as for a bad configuration: starting again will not help).</summary>
    public const int Refused = 2;

    /// <summary>Why the daemon's files may not be used, or null: <c>~/.ws2s</c> itself, or one of its files, is a symbolic link.</summary>
    private static string? HomeRefusal() => NoFollow.Refusal([Home, PidFile, LogFile, LockFile, ReloadFile]);

    /// <summary>The command that runs this very program (the apphost, or <c>dotnet ws2sd.dll</c>).</summary>
    private static List<string> Self()
    {
        var process = Environment.ProcessPath!;
        return Path.GetFileNameWithoutExtension(process) == "dotnet"
            ? [process, Path.Combine(AppContext.BaseDirectory, "ws2sd.dll")]
            : [process];
    }

    /// <summary>Refuses (exit 2, saying which) when <c>~/.ws2s</c> or one of the daemon's files in it is a symbolic link.</summary>
    private static int? RefuseLinks(string command)
    {
        if (HomeRefusal() is not { } why) return null;
        Console.Error.WriteLine($"ws2sd {command}: {why}");
        return Refused;
    }

    public static async Task<int> StartAsync(string[] args)
    {
        if (RefuseLinks("start") is { } refused) return refused;
        if (Running(out var stale) is { } running)
        {
            Console.Error.WriteLine($"ws2sd is already running (pid {running.Pid}); use ws2sd restart");
            return 1;
        }
        if (stale)
        {
            Console.WriteLine($"removing a stale pid file ({PidFile}: it does not name this home's running ws2sd)");
            File.Delete(PidFile);
        }
        // Only its owner may put anything in ~/.ws2s (when ws2sd creates it).
        if (OperatingSystem.IsWindows()) Directory.CreateDirectory(Home);
        else Directory.CreateDirectory(Home, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
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
            // Started: the child holds the lock and its pid file (written once it listens) names it.
            if (Running(out _) is { Record: { } record } started && started.Pid == child.Id)
            {
                Console.WriteLine($"ws2sd started (pid {started.Pid}), listening on {record.Url}; log: {LogFile}");
                return 0;
            }
            if (child.HasExited)
            {
                Console.Error.WriteLine($"ws2sd could not start (exit code {child.ExitCode}); the end of {LogFile}:");
                foreach (var line in (NoFollow.ReadAllLines(LogFile) ?? []).TakeLast(5)) Console.Error.WriteLine("  " + line);
                return 2;
            }
            await Task.Delay(100); // polling a child process we do not otherwise hear from
        }
        Console.Error.WriteLine($"ws2sd did not report listening within 30 s; see {LogFile}");
        return 2;
    }

    public static async Task<int> StopAsync(string[] args)
    {
        if (RefuseLinks("stop") is { } refused) return refused;
        if (Running(out var stale) is not { } running)
        {
            if (stale) File.Delete(PidFile);
            Console.WriteLine(stale ? "ws2sd is not running (removed a stale pid file)" : "ws2sd is not running");
            return 0;
        }
        // SIGTERM: every client gets close 1001 and the server exits within shutdownTimeoutSeconds; SIGKILL after that.
        var patience = TimeSpan.FromSeconds(ShutdownTimeoutSeconds(args) + 5);
        Signal(running.Pid, SigTerm);
        var clock = Stopwatch.StartNew();
        // The kernel releases the lock when the process has ended.
        while (InstanceLock.Holder(LockFile) == running.Pid && clock.Elapsed < patience) await Task.Delay(100); // waiting for another process to exit
        if (Signal(running.Pid, SigKill))
            Console.WriteLine($"ws2sd (pid {running.Pid}) did not stop within {patience.TotalSeconds:0} s: killed");
        else
            Console.WriteLine($"ws2sd stopped (pid {running.Pid})");
        if (Running(out stale) is null && stale) File.Delete(PidFile);
        return 0;
    }

    private static int ShutdownTimeoutSeconds(string[] args)
    {
        try
        {
            return ConfigFile.Read(new Microsoft.Extensions.Configuration.ConfigurationBuilder(), ConfigFile.Locate(args), args).Server.ShutdownTimeoutSeconds;
        }
        catch (ConfigException)
        {
            return 10;
        }
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
          ws2sd reload          re-read the configuration without dropping anyone, and say whether it was taken
                                (also SIGHUP, or editing the file; the log says the outcome then)
          ws2sd probe URL       exit 0 if URL answers 2xx (a health check, e.g. http://127.0.0.1:3614/readyz)
          ws2sd help | --help | --version

        Options (run, start, restart, service):
          --config PATH       the configuration file (default ~/.ws2s/config.json, or $WS2S_CONFIG)
          --log-format json   one JSON object per log line
          --listen:port 4000  any configuration key can be set this way, e.g. --limits:idleTimeoutSeconds 60

        Exit codes: 0 done, 2 bad configuration (at start, or refused by `reload`), cannot listen, a usage mistake,
        or a symbolic link in ~/.ws2s, 3 not running (status, reload).
        """;
}
