using System.Diagnostics;
using System.Globalization;
using System.Net;
using Ws2s.Host.Configuration;

namespace Ws2s.Host;

/// <summary><c>ws2sd status</c> (with the session count, asked on loopback) and <c>ws2sd reload</c> (SIGHUP, then the server's answer).</summary>
internal static partial class Daemon
{
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
}
