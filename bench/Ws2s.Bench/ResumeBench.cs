using System.Diagnostics;
using System.Globalization;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Ws2s.Bench;

/// <summary>
/// Issue 25's targets: what a suspended session costs the server next to an idle one (RSS per session, each shape in a
/// ws2sd of its own), and how long a resume takes next to what any new session pays first (a WebSocket handshake and one
/// round trip), on loopback. Sessions are held by Node's <c>ws</c> (bench/node/resume.cjs); the resume's time is
/// measured with it and with the bench's own .NET client.
/// </summary>
internal static partial class ResumeBench
{
    private static readonly string Script = Path.Combine(AppContext.BaseDirectory, "node", "resume.cjs");

    public static async Task RunAsync(int sessions, int rounds)
    {
        using var echo = new EchoServer();
        var target = echo.Endpoint.ToString();
        Console.WriteLine($"resume bench: {sessions} sessions each connected to a TCP echo server, held by Node's ws; {rounds} resumes");
        var idle = await PerSessionAsync(target, sessions, resumable: false, drop: false);
        var open = await PerSessionAsync(target, sessions, resumable: true, drop: false);
        var suspended = await PerSessionAsync(target, sessions, resumable: true, drop: true);
        Console.WriteLine(FormattableString.Invariant(
            $"  RSS per session: idle {idle / 1024:F1} KiB, idle resumable {open / 1024:F1} KiB, suspended (nothing buffered) {suspended / 1024:F1} KiB: suspended / idle {suspended / idle:F2}"));

        await using var server = await ServerProcess.StartAsync(Config());
        var node = JsonDocument.Parse(await RunNodeAsync(server.Url, target, "latency", rounds)).RootElement;
        Console.WriteLine(FormattableString.Invariant(
            $"  Node's ws: a new session's handshake and one round trip p50 {node.GetProperty("freshP50").GetDouble():F2} ms (p90 {node.GetProperty("freshP90").GetDouble():F2}); a resume (its handshake, resume, answer) p50 {node.GetProperty("resumeP50").GetDouble():F2} ms (p90 {node.GetProperty("resumeP90").GetDouble():F2}): ratio {node.GetProperty("resumeP50").GetDouble() / node.GetProperty("freshP50").GetDouble():F2}"));
        var (fresh, resumed) = await DotnetLatencyAsync(server, echo.Endpoint, rounds, waitForSuspension: false);
        Console.WriteLine(FormattableString.Invariant(
            $"  .NET client: handshake and one round trip p50 {Percentile(fresh, 0.5):F2} ms (p90 {Percentile(fresh, 0.9):F2}); resume p50 {Percentile(resumed, 0.5):F2} ms (p90 {Percentile(resumed, 0.9):F2}): ratio {Percentile(resumed, 0.5) / Percentile(fresh, 0.5):F2}"));
        (fresh, resumed) = await DotnetLatencyAsync(server, echo.Endpoint, rounds, waitForSuspension: true);
        Console.WriteLine(FormattableString.Invariant(
            $"  .NET client, resuming only once the server has the session suspended: handshake and one round trip p50 {Percentile(fresh, 0.5):F2} ms; resume p50 {Percentile(resumed, 0.5):F2} ms (p90 {Percentile(resumed, 0.9):F2}): ratio {Percentile(resumed, 0.5) / Percentile(fresh, 0.5):F2}"));
    }

    private static string Config() => ServerProcess.BenchConfig(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 9))
        .Replace("\"origins\":[\"*\"],", "\"origins\":[\"*\"],\"resume\":{\"instance\":\"b1\",\"maxAttemptsPerMinute\":1000000},", StringComparison.Ordinal)
        .Replace("\"maxSessionsPerClient\":100000,", "\"maxSessionsPerClient\":100000,\"maxPeerConnectionsPerClient\":100000,", StringComparison.Ordinal);

    /// <summary>RSS per session of <paramref name="sessions"/> held by Node's ws (and, with <paramref name="drop"/>, then dropped and suspended), in a fresh ws2sd.</summary>
    private static async Task<double> PerSessionAsync(string target, int sessions, bool resumable, bool drop)
    {
        await using var server = await ServerProcess.StartAsync(Config());
        var before = await HoldAsync(server, target, 1, resumable, drop: false);
        var after = await HoldAsync(server, target, sessions, resumable, drop);
        return (after - before) / (double)sessions;
    }

    /// <summary>Holds <paramref name="count"/> sessions with Node's ws (dropped, and waited for until the server has them all suspended, if asked) and measures the server's RSS.</summary>
    private static async Task<long> HoldAsync(ServerProcess server, string target, int count, bool resumable, bool drop)
    {
        using var process = Process.Start(Command(server.Url, target, "hold", count, resumable))!;
        var errors = process.StandardError.ReadToEndAsync();
        if (await process.StandardOutput.ReadLineAsync() is not { } opened || !opened.Contains("\"open\"", StringComparison.Ordinal))
            throw new InvalidOperationException($"node could not open {count} sessions: {await errors}");
        var suspendedBefore = await SuspendedAsync(server);
        if (drop)
        {
            await process.StandardInput.WriteLineAsync("drop");
            await process.StandardInput.FlushAsync();
            await process.StandardOutput.ReadLineAsync();
            var clock = Stopwatch.StartNew();
            while (await SuspendedAsync(server) < suspendedBefore + count)
            {
                if (clock.Elapsed > TimeSpan.FromSeconds(25)) throw new InvalidOperationException("the sessions were not all suspended within 25 s");
                await Task.Delay(200); // polling the server's metric (a measurement, not a test)
            }
        }
        await Task.Delay(2000); // let the server settle (a measurement pause, as the idle bench's)
        // The dropped WebSockets' garbage is not the suspended sessions' cost: a full GC first (dotnet-gcdump induces one),
        // in every shape alike, when the tool is there.
        await CollectAsync(server.Pid);
        var rss = server.Rss();
        process.StandardInput.Close();
        await process.WaitForExitAsync();
        return rss;
    }

    /// <summary>A full GC in the server, by taking a heap snapshot with dotnet-gcdump (installed as a .NET tool), if it is installed.</summary>
    private static async Task CollectAsync(int pid)
    {
        var tool = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".dotnet", "tools", "dotnet-gcdump");
        if (!File.Exists(tool)) return;
        var dump = Path.Combine(Path.GetTempPath(), $"ws2s-resume-bench-{pid}.gcdump");
        using var process = Process.Start(new ProcessStartInfo(tool, ["collect", "-p", pid.ToString(CultureInfo.InvariantCulture), "-o", dump])
            { RedirectStandardOutput = true, RedirectStandardError = true })!;
        await process.WaitForExitAsync();
        File.Delete(dump);
        await Task.Delay(1000); // a measurement pause after it
    }

    private static async Task<long> SuspendedAsync(ServerProcess server)
    {
        using var http = new HttpClient();
        var text = await http.GetStringAsync(new UriBuilder(server.Url) { Scheme = "http", Path = "/metrics" }.Uri);
        var match = SuspendedMetric().Match(text);
        return match.Success ? long.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
    }

    [GeneratedRegex(@"^ws2s_resume_suspended(?:\{[^}]*\})? (\d+)", RegexOptions.Multiline)]
    private static partial Regex SuspendedMetric();

    private static ProcessStartInfo Command(Uri url, string target, string work, int count, bool resumable = true)
    {
        var info = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var word in new[] { Script, "--url", url.ToString(), "--target", target, "--work", work, "--count", count.ToString(CultureInfo.InvariantCulture),
                     "--resumable", resumable ? "1" : "0" })
            info.ArgumentList.Add(word);
        return info;
    }

    private static async Task<string> RunNodeAsync(Uri url, string target, string work, int count)
    {
        using var process = Process.Start(Command(url, target, work, count))!;
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0) throw new InvalidOperationException($"node resume client: {await errors}");
        return (await output).Trim().Split('\n')[^1];
    }

    /// <summary>The same rounds as the Node client's, with ClientWebSocket.</summary>
    /// <remarks><paramref name="waitForSuspension"/>: resume only once the server has seen the old WebSocket go (else it may still have it, and lets it go first).</remarks>
    private static async Task<(List<double> Fresh, List<double> Resumed)> DotnetLatencyAsync(ServerProcess server, System.Net.IPEndPoint echo, int rounds, bool waitForSuspension)
    {
        var url = server.Url;
        var session = await OpenAsync(url);
        var connected = await AskAsync(session, new { command = "connect", host = "127.0.0.1", port = echo.Port, resumable = true });
        var token = connected.GetProperty("resume").GetString()!;
        var fresh = new List<double>();
        var resumed = new List<double>();
        for (var i = 0; i < rounds; i++)
        {
            var clock = Stopwatch.StartNew();
            using (var other = await OpenAsync(url))
            {
                await AskAsync(other, new { command = "ping" });
                fresh.Add(clock.Elapsed.TotalMilliseconds);
                await other.CloseAsync(WebSocketCloseStatus.NormalClosure, "", CancellationToken.None);
            }
            var suspended = waitForSuspension ? await SuspendedAsync(server) : 0;
            session.Abort();
            session.Dispose();
            while (waitForSuspension && await SuspendedAsync(server) <= suspended) await Task.Delay(1); // until the server has it suspended
            clock.Restart();
            session = await OpenAsync(new Uri(url, $"?instance={token[..token.IndexOf('.')]}"));
            var answer = await AskAsync(session, new { command = "resume", token, received = 0 });
            resumed.Add(clock.Elapsed.TotalMilliseconds);
            token = answer.GetProperty("resume").GetString()!;
            await AskAsync(session, new { command = "ping" });
        }
        session.Dispose();
        return (fresh, resumed);
    }

    private static async Task<ClientWebSocket> OpenAsync(Uri url)
    {
        var socket = new ClientWebSocket();
        await socket.ConnectAsync(url, CancellationToken.None);
        return socket;
    }

    private static async Task<JsonElement> AskAsync(ClientWebSocket socket, object request)
    {
        await socket.SendAsync(JsonSerializer.SerializeToUtf8Bytes(request), WebSocketMessageType.Text, true, CancellationToken.None);
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, CancellationToken.None);
            var answer = JsonDocument.Parse(Encoding.UTF8.GetString(buffer, 0, result.Count)).RootElement.Clone();
            if (answer.GetProperty("code").GetInt32() != -1) return answer;
        }
    }

    private static double Percentile(List<double> values, double p)
    {
        var sorted = values.Order().ToList();
        return sorted[Math.Min(sorted.Count - 1, (int)(sorted.Count * p))];
    }
}
