using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
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

    // kill(2) and pidfd_open/pidfd_send_signal: .NET's Process.Kill only sends SIGKILL; SIGTERM (a clean stop) and SIGHUP (reload) need the calls themselves.
#pragma warning disable SYSLIB1054 // DllImport: LibraryImport would need unsafe code for these int-only calls
    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    [DllImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static extern long PidfdOpen(long number, int pid, uint flags);

    [DllImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static extern long PidfdSendSignal(long number, int pidfd, int signal, IntPtr info, uint flags);

    [DllImport("libc", EntryPoint = "close")]
    private static extern int Close(int fd);
#pragma warning restore SYSLIB1054

    private const long SysPidfdSendSignal = 424, SysPidfdOpen = 434; // the same number on every Linux architecture
    private const int SigTerm = 15, SigKill = 9, SigHup = 1;

    /// <summary>What the pid file says: the server's pid, then the URLs it listens on (text to show and ports to check, never addresses to dial).</summary>
    private sealed record PidFileRecord(int Pid, string? Url, string? Management)
    {
        /// <summary>The pid file as written, or null when it is missing or does not start with a pid.</summary>
        public static PidFileRecord? Read()
        {
            var lines = NoFollow.ReadAllLines(PidFile);
            if (lines is null || lines.Length == 0 || !int.TryParse(lines[0], CultureInfo.InvariantCulture, out var pid)) return null;
            return new(pid, lines.ElementAtOrDefault(1) is { Length: > 0 } url ? url : null, lines.ElementAtOrDefault(2) is { Length: > 0 } m ? m : null);
        }
    }

    /// <summary>This home's server: the pid holding the lock, and the pid file if it is that process's (null until it listens).</summary>
    private sealed record Instance(int Pid, PidFileRecord? Record);

    /// <summary>
    /// The server holding this home's lock, if one does. <paramref name="stale"/>: a pid file exists that
    /// does not name it (its process is gone, is something else, or is another home's server).
    /// </summary>
    private static Instance? Running(out bool stale)
    {
        var holder = InstanceLock.Holder(LockFile);
        var exists = File.Exists(PidFile);
        var record = PidFileRecord.Read();
        stale = exists && (holder is null || record?.Pid != holder);
        return holder is { } pid ? new Instance(pid, record?.Pid == pid ? record : null) : null;
    }

    /// <summary>
    /// Sends <paramref name="signal"/> to <paramref name="pid"/> only while it holds this home's lock: the
    /// process is pinned by a pidfd first, so a pid freed and reused in between is never signalled.
    /// </summary>
    private static bool Signal(int pid, int signal)
    {
        var pidfd = (int)PidfdOpen(SysPidfdOpen, pid, 0);
        try
        {
            if (InstanceLock.Holder(LockFile) != pid) return false;
            return pidfd >= 0 ? PidfdSendSignal(SysPidfdSendSignal, pidfd, signal, IntPtr.Zero, 0) == 0 : Kill(pid, signal) == 0; // kernels before 5.3: kill
        }
        finally
        {
            if (pidfd >= 0) Close(pidfd);
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

    public static async Task<int> StatusAsync()
    {
        if (RefuseLinks("status") is { } refused) return refused;
        if (Running(out var stale) is not { } running)
        {
            Console.WriteLine(stale ? $"ws2sd is not running (stale pid file {PidFile})" : "ws2sd is not running");
            return NotRunning;
        }
        Console.WriteLine($"ws2sd is running (pid {running.Pid})");
        var listening = ListeningSockets.Of(running.Pid);
        if (running.Record?.Url is { } url && Loopback(listening, url) is not null) Console.WriteLine($"listening on {url}");
        if (await ActiveSessionsAsync(running, listening) is { } sessions) Console.WriteLine($"active sessions: {sessions}");
        return 0;
    }

    /// <summary>
    /// Where on this machine's loopback the server can be reached for the port of <paramref name="url"/>, or
    /// null: the port must be one the verified server itself listens on (the kernel says so), and only a
    /// loopback address is ever returned (127.0.0.1 or ::1 for a wildcard listener), never the host in the URL.
    /// </summary>
    private static IPEndPoint? Loopback(IReadOnlyList<IPEndPoint> listening, string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri)) return null;
        foreach (var socket in listening.Where(s => s.Port == uri.Port))
        {
            if (IPAddress.IsLoopback(socket.Address)) return socket;
            if (socket.Address.Equals(IPAddress.Any)) return new IPEndPoint(IPAddress.Loopback, socket.Port);
            if (socket.Address.Equals(IPAddress.IPv6Any)) return new IPEndPoint(IPAddress.IPv6Loopback, socket.Port);
        }
        return null;
    }

    /// <summary>
    /// <c>ws2s_sessions_active</c> from the server's /metrics (the management port's when it has one), asked on
    /// loopback at a port the server is seen listening on (<see cref="Loopback"/>); null when there is none.
    /// </summary>
    private static async Task<long?> ActiveSessionsAsync(Instance running, IReadOnlyList<IPEndPoint> listening)
    {
        if (running.Record is not { } record || !ListeningSockets.SameNetwork(running.Pid)) return null;
        var (url, scheme) = record.Management is { } management ? (management, "http")
            : record.Url is { } main ? (main, main.StartsWith("wss://", StringComparison.Ordinal) ? "https" : "http") : (null, null);
        if (url is null || Loopback(listening, url) is not { } endpoint) return null;
        var host = endpoint.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{endpoint.Address}]" : endpoint.Address.ToString();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        // A server listening only with TLS would present a certificate for its public name, not 127.0.0.1.
        try
        {
            var text = await http.GetStringAsync(new Uri($"{scheme}://{host}:{endpoint.Port}/metrics"));
            var line = text.Split('\n').FirstOrDefault(l => l.StartsWith("ws2s_sessions_active", StringComparison.Ordinal));
            return line is null ? null : (long)double.Parse(line.Split(' ')[^1], CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or FormatException)
        {
            return null;
        }
    }

    /// <summary>Where the background server writes each reload's outcome (<see cref="ReloadReport"/>): next to its pid file.</summary>
    public static string ReloadFileOf(string pidFile) => Path.Combine(Path.GetDirectoryName(Path.GetFullPath(pidFile))!, "ws2sd.reload");

    private static string ReloadFile => ReloadFileOf(PidFile);

    /// <summary>
    /// Asks the running server to re-read its configuration (SIGHUP) and waits for its answer: exit 0 when the
    /// new configuration was taken, 2 when it was refused (the words say why; the old one stays in force).
    /// </summary>
    public static async Task<int> ReloadAsync()
    {
        if (RefuseLinks("reload") is { } refused) return refused;
        if (NoFollow.Refusal([ReloadFile]) is { } linked)
        {
            Console.Error.WriteLine($"ws2sd reload: {linked}");
            return Refused;
        }
        var before = ReloadReport.Read(ReloadFile)?.Stamp;
        if (Running(out _) is not { } running || !Signal(running.Pid, SigHup))
        {
            Console.WriteLine("ws2sd is not running");
            return NotRunning;
        }
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            if (ReloadReport.Read(ReloadFile) is { Why: ConfigReloader.Hangup } outcome && outcome.Stamp != before && outcome.Stamp.StartsWith($"{running.Pid}.", StringComparison.Ordinal))
            {
                if (outcome.Taken)
                {
                    Console.WriteLine($"ws2sd (pid {running.Pid}) reloaded its configuration: {outcome.Words}");
                    return 0;
                }
                Console.Error.WriteLine($"ws2sd (pid {running.Pid}) refused the new configuration: {outcome.Words}");
                return Refused;
            }
            await Task.Delay(100); // another process's answer, in a file: polled
        }
        Console.Error.WriteLine($"reload requested (pid {running.Pid}), but no answer within 30 s; see {LogFile}");
        return 1;
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
