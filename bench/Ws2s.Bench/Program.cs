using System.Globalization;
using Ws2s.Bench;

// ws2s bench: the same workloads against plain TCP (the baseline) and through a bridge speaking the
// ws2s protocol, in one run, reported as ratios against the baseline. Usage:
//   dotnet run -c Release --project bench/Ws2s.Bench -- [--pool-completions] [--let-cpus-idle] [--server ws://HOST:PORT/] [--seconds 5] [--idle-sessions 8000] [--idle-only] [--idle-hold SECONDS] [--idle-echo BYTES] [--cpu-rounds 3] [--paced-mb 100] [--only JSON|binary|websockify]
// websockify and socat (Debian packages) are measured too when they are on PATH.
//   dotnet run -c Release --project bench/Ws2s.Bench -- --soak-mib 1024 [--read-mib-per-second 1] [--soak-seconds N]
//   dotnet run -c Release --project bench/Ws2s.Bench -- --burst 150 [--burst-watch 60] [--burst-json]   (RSS after a burst of full queues)
//   dotnet run -c Release --project bench/Ws2s.Bench -- --micro     (BenchmarkDotNet: codec and core step)
//   dotnet run -c Release --project bench/Ws2s.Bench -- --wisp [--wisp-js NODE_MODULES] [--wisp-python CHECKOUT] [--wisp-connections 4] [--wisp-streams 16] [--seconds 5] [--wisp-idle-streams 20000] [--wisp-opens 2000] [--wisp-rounds 3] [--wisp-variant NAME=VALUE]... [--wisp-idle-by-wisp-js]
// Without --server it starts ws2s for .NET (ws2sd, built beside this tool) as its own process on a
// loopback port. With --server it measures any server speaking the protocol (e.g. the original
// Python ws2s) that may dial loopback; binary mode and the idle-RSS figure need ws2s for .NET.

// The bench's own client and echo server complete socket operations on the epoll thread instead of
// dispatching each to the thread pool (a hop that cost the TCP baseline ~30 µs of its p50 here, and so
// hid that much of every bridge's added latency): the process runs itself again with .NET's switch set.
// ws2sd and the relays are started without it: they are measured as shipped. --pool-completions: as before.
const string InlineCompletions = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";
if (args is ["--bare-relay", var barePort, var bareEcho])
{
    // The baseline relay (PeerRelay.BareKestrelAsync starts it): as an app would ship it, without the bench's switch.
    await BareRelay.RunAsync(int.Parse(barePort, CultureInfo.InvariantCulture), System.Net.IPEndPoint.Parse(bareEcho));
    return 0;
}
if (!args.Contains("--pool-completions") && !args.Contains("--micro") && Environment.GetEnvironmentVariable(InlineCompletions) != "1")
{
    var (self, prefix) = PeerRelay.Itself();
    var again = new System.Diagnostics.ProcessStartInfo(self, [.. prefix, .. args]);
    again.Environment[InlineCompletions] = "1";
    using var itself = System.Diagnostics.Process.Start(again)!;
    await itself.WaitForExitAsync();
    return itself.ExitCode;
}

if (args.Contains("--micro"))
{
    BenchmarkDotNet.Running.BenchmarkSwitcher.FromAssembly(typeof(Micro).Assembly).Run(["--filter", "*", "--job", "short"]);
    return 0;
}
if (Option("--burst") is { } burstSessions)
{
    await Burst.RunAsync(int.Parse(burstSessions, CultureInfo.InvariantCulture),
        TimeSpan.FromSeconds(double.Parse(Option("--burst-watch") ?? "60", CultureInfo.InvariantCulture)), args.Contains("--burst-json"));
    return 0;
}
if (args.Contains("--resume"))
{
    await ResumeBench.RunAsync(int.Parse(Option("--resume-sessions") ?? "2000", CultureInfo.InvariantCulture),
        int.Parse(Option("--resume-rounds") ?? "200", CultureInfo.InvariantCulture));
    return 0;
}

if (args.Contains("--wisp"))
{
    await WispBench.RunAsync(new(int.Parse(Option("--wisp-connections") ?? "4", CultureInfo.InvariantCulture), int.Parse(Option("--wisp-streams") ?? "16", CultureInfo.InvariantCulture),
        TimeSpan.FromSeconds(double.Parse(Option("--seconds") ?? "5", CultureInfo.InvariantCulture)), int.Parse(Option("--wisp-idle-streams") ?? "20000", CultureInfo.InvariantCulture),
        Option("--wisp-js"), Option("--wisp-python"), int.Parse(Option("--wisp-opens") ?? "2000", CultureInfo.InvariantCulture),
        int.Parse(Option("--wisp-rounds") ?? "3", CultureInfo.InvariantCulture), Options("--wisp-variant"), args.Contains("--wisp-idle-by-wisp-js")));
    return 0;
}
if (Option("--soak-mib") is { } soakMib)
{
    var limit = Option("--soak-seconds") is { } s ? TimeSpan.FromSeconds(double.Parse(s, CultureInfo.InvariantCulture)) : (TimeSpan?)null;
    await Soak.RunAsync(long.Parse(soakMib, CultureInfo.InvariantCulture) << 20,
        double.Parse(Option("--read-mib-per-second") ?? "1", CultureInfo.InvariantCulture) * (1 << 20), limit);
    return 0;
}

using var wake = args.Contains("--let-cpus-idle") ? null : WakeLatency.Hold();
var seconds = double.Parse(Option("--seconds") ?? "5", CultureInfo.InvariantCulture);
var idleSessions = int.Parse(Option("--idle-sessions") ?? "2000", CultureInfo.InvariantCulture);
var duration = TimeSpan.FromSeconds(seconds);

using var echo = new EchoServer();
using var tlsEcho = new EchoServer(tls: true);
await using var own = Option("--server") is null ? await ServerProcess.StartAsync(ServerProcess.BenchConfig(echo.Endpoint, tlsEcho.CertificateFile)) : null;
await using var websockify = await PeerRelay.WebsockifyAsync(echo.Endpoint);
await using var socat = await PeerRelay.SocatAsync(echo.Endpoint);
await using var bare = await PeerRelay.BareKestrelAsync(echo.Endpoint);
var server = own?.Url ?? new Uri(Option("--server")!);
var external = own is null;

Console.WriteLine($"ws2s bench: {Environment.ProcessorCount} cores, .NET {Environment.Version}, server {server}{(external ? " (external)" : " (ws2sd, own process)")}, {seconds} s per run, 16 KiB writes, "
    + (Environment.GetEnvironmentVariable(InlineCompletions) == "1" ? "the bench's client and echo server with inline socket completions" : "the bench's client and echo server on the thread pool")
    + (wake?.Held == true ? ", CPU wake-up latency held at 0 (/dev/cpu_dma_latency)" : ", CPUs free to idle: round trips include their wake-ups (hold /dev/cpu_dma_latency as root to leave them out)"));
var plain = () => TcpStream.OpenAsync(echo.Endpoint);
var json = () => BridgeStream.OpenAsync(server, echo.Endpoint, binary: false);
var binary = () => BridgeStream.OpenAsync(server, echo.Endpoint, binary: true);

// Each path with the server CPU it costs (null: not measured).
Func<double>? ownCpu = own is null ? null : own.CpuSeconds;
var paths = new List<(string Name, Func<Task<IEchoStream>> Open, Func<double>? Cpu)>
{
    ("plain TCP (baseline)", plain, null),
    ("ws2s JSON mode", json, ownCpu),
};
if (!external)
{
    paths.Add(("ws2s binary mode", binary, ownCpu));
    paths.Add(("ws2s /websockify", () => WebsockifyStream.OpenAsync(new Uri(server, "/websockify?token=echo")), ownCpu));
    // TLS to the peer: ws2s does the handshake and the crypto; the baseline is TLS straight to the echo server.
    paths.Add(("TLS direct (baseline for TLS)", () => TlsStream.OpenAsync(tlsEcho.Endpoint, tlsEcho.CertificateFile!), null));
    paths.Add(("ws2s JSON mode, TLS to the peer", () => BridgeStream.OpenAsync(server, tlsEcho.Endpoint, binary: false, tls: true), ownCpu));
    paths.Add(("ws2s binary mode, TLS to the peer", () => BridgeStream.OpenAsync(server, tlsEcho.Endpoint, binary: true, tls: true), ownCpu));
}
if (bare is not null)
    paths.Add(("bare Kestrel WebSocket relay (baseline: no ws2s)", () => WebsockifyStream.OpenAsync(new Uri($"ws://127.0.0.1:{bare.Port}/")), bare.CpuSeconds));
if (websockify is not null)
    paths.Add(("websockify (Python)", () => WebsockifyStream.OpenAsync(new Uri($"ws://127.0.0.1:{websockify.Port}/")), websockify.CpuSeconds));
if (socat is not null)
    paths.Add(("socat (C, TCP relay)", () => TcpStream.OpenAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, socat.Port)), socat.CpuSeconds));

var rows = new List<Row>();
var costs = new List<(string Name, double MsPerMb, double MsPerSession)>();
// --only NAME keeps the baseline and the paths whose name contains NAME (e.g. "JSON"), to profile one of them.
if (Option("--only") is { } only) paths.RemoveAll(p => !p.Name.Contains("baseline") && !p.Name.Contains(only, StringComparison.OrdinalIgnoreCase));
foreach (var (name, open, serverCpu) in args.Contains("--idle-only") ? [] : paths)
{
    // A short warm-up first, so JIT and tiering are not billed to whichever path runs first.
    Console.Error.WriteLine($"bench: {name}");
    await Workloads.ThroughputAsync(open, 1, 16 * 1024, TimeSpan.FromSeconds(1));
    await ChurnWorkloads.ConnectsAsync(open, 8, 300);
    // The server's CPU (from /proc) per MB echoed with one connection, and per session in the connects workload.
    var cpu = serverCpu?.Invoke() ?? 0;
    var one = await Workloads.ThroughputAsync(open, 1, 16 * 1024, duration);
    var perMb = serverCpu is null ? double.NaN : (serverCpu() - cpu) * 1000 / (one * duration.TotalSeconds / 1e6);
    var phase = System.Diagnostics.Stopwatch.StartNew();
    var sixteen = await Workloads.ThroughputAsync(open, 16, 16 * 1024, duration);
    Console.Error.WriteLine($"bench: {name}, 16 connections took {phase.Elapsed.TotalSeconds:F1} s");
    var latency = await Workloads.LatencyAsync(open, 64, 5000);
    cpu = serverCpu?.Invoke() ?? 0;
    var connects = await ChurnWorkloads.ConnectsAsync(open, 8, 3000);
    var perSession = serverCpu is null ? double.NaN : (serverCpu() - cpu) * 1000 / 3000;
    rows.Add(new Row(name, one, sixteen, latency.P50, latency.P99, connects));
    if (serverCpu is not null) costs.Add((name, perMb, perSession));
}

if (rows.Count > 0) PrintTable(rows);
if (costs.Count > 0)
{
    // CPU per MB moves by ±20 % between runs here: measure it again in rounds that alternate the
    // paths (so drift hits them alike) and report the median next to the first figure.
    var rounds = int.Parse(Option("--cpu-rounds") ?? "3", CultureInfo.InvariantCulture);
    // Flat out, JSON mode's client (base64 and JSON for every byte) is slower than binary mode's, and
    // the server's CPU per MB depends on the rate (how many bytes each syscall and wake-up carries);
    // so the paths are also measured paced at one rate all of them reach.
    var paced = double.Parse(Option("--paced-mb") ?? "100", CultureInfo.InvariantCulture) * 1e6;
    var flat = costs.ToDictionary(c => c.Name, c => new List<double> { c.MsPerMb });
    var atRate = costs.ToDictionary(c => c.Name, _ => new List<double>());
    for (var round = 0; round < rounds; round++)
        foreach (var (name, open, serverCpu) in paths.Where(p => p.Cpu is not null))
        {
            if (round > 0) flat[name].Add(await CpuPerMbAsync(open, serverCpu!, 0));
            atRate[name].Add(await CpuPerMbAsync(open, serverCpu!, paced));
        }
    static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);
    static string Each(List<double> values) => string.Join(" / ", values.Select(v => v.ToString("F1", CultureInfo.InvariantCulture)));
    Console.WriteLine();
    Console.WriteLine(FormattableString.Invariant($"| path | server CPU per MB echoed, 1 conn flat out (median of {rounds}; each) | paced at {paced / 1e6:F0} MB/s (median; each) | server CPU per session (upgrade, connect, 64 B echo, close) |"));
    Console.WriteLine("|---|---|---|---|");
    foreach (var (name, _, perSession) in costs)
        Console.WriteLine(FormattableString.Invariant(
            $"| {name} | {Median(flat[name]):F1} ms ({Each(flat[name])}) | {Median(atRate[name]):F1} ms ({Each(atRate[name])}) | {perSession:F2} ms |"));
    const string Json = "ws2s JSON mode", Binary = "ws2s binary mode";
    if (flat.ContainsKey(Json) && flat.ContainsKey(Binary))
        Console.WriteLine(FormattableString.Invariant(
            $"JSON mode costs {Median(flat[Json]) / Median(flat[Binary]):F2}× binary mode's CPU per MB flat out, {Median(atRate[Json]) / Median(atRate[Binary]):F2}× paced at {paced / 1e6:F0} MB/s (medians)."));
}

async Task<double> CpuPerMbAsync(Func<Task<IEchoStream>> open, Func<double> serverCpu, double pacedBytesPerSecond)
{
    var cpu = serverCpu();
    var bytes = await Workloads.ThroughputAsync(open, 1, 16 * 1024, duration, pacedBytesPerSecond) * duration.TotalSeconds;
    return (serverCpu() - cpu) * 1000 / (bytes / 1e6);
}

void PrintTable(List<Row> rows)
{
var baseline = rows[0];
Console.WriteLine();
Console.WriteLine("| path | throughput, 1 conn | vs TCP | throughput, 16 conns | vs TCP | 64 B RTT p50 | p99 | p50 − TCP | connects/s | vs TCP |");
Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
foreach (var r in rows)
    Console.WriteLine(FormattableString.Invariant(
        $"| {r.Name} | {r.One / 1e6:F0} MB/s | {r.One / baseline.One * 100:F1} % | {r.Sixteen / 1e6:F0} MB/s | {r.Sixteen / baseline.Sixteen * 100:F1} % | {r.P50:F0} µs | {r.P99:F0} µs | {r.P50 - baseline.P50:+0;-0} µs | {r.Connects:F0} | {r.Connects / baseline.Connects * 100:F0} % |"));
}

// The same workloads from a client nobody here wrote, Node's ws (bench/node/client.cjs), against the same
// server, echo server and relays: published beside the bench's own figures, never instead of them.
var node = !args.Contains("--idle-only") && NodeClient.Available();
if (node)
{
    var target = echo.Endpoint.ToString();
    using var nodeEcho = await NodeClient.EchoServer.StartAsync();
    var routes = new List<(string Name, NodeClient.Route Route, Func<double>? Cpu)>
    {
        ("plain TCP (baseline)", new("tcp", target), null),
        // The client's own WebSocket cost (its tail above all): a Node ws echo server, no relay.
        ("Node ws echo server (baseline: no relay)", new("raw", target, new Uri($"ws://127.0.0.1:{nodeEcho.Port}/")), null),
        ("ws2s JSON mode", new("json", target, server), ownCpu),
    };
    if (!external)
    {
        routes.Add(("ws2s binary mode", new("binary", target, server), ownCpu));
        routes.Add(("ws2s /websockify", new("raw", target, new Uri(server, "/websockify?token=echo")), ownCpu));
    }
    if (bare is not null) routes.Add(("bare Kestrel WebSocket relay (baseline: no ws2s)", new("raw", target, new Uri($"ws://127.0.0.1:{bare.Port}/")), bare.CpuSeconds));
    if (websockify is not null) routes.Add(("websockify (Python)", new("raw", target, new Uri($"ws://127.0.0.1:{websockify.Port}/")), websockify.CpuSeconds));
    if (socat is not null) routes.Add(("socat (C, TCP relay)", new("tcp", $"127.0.0.1:{socat.Port}"), socat.CpuSeconds));
    if (Option("--only") is { } onlyNode) routes.RemoveAll(r => !r.Name.Contains("baseline") && !r.Name.Contains(onlyNode, StringComparison.OrdinalIgnoreCase));
    await NodeClient.MeasureAsync(routes, seconds);
}

if (own is not null && idleSessions > 0)
{
    // Each client's idle sessions in a ws2sd of their own, started for it: a server that already held (and
    // freed) sessions would reuse that memory, and whichever client came second would look cheaper.
    var echoBytes = int.Parse(Option("--idle-echo") ?? "0", CultureInfo.InvariantCulture);
    await using (var fresh = await ServerProcess.StartAsync(ServerProcess.BenchConfig(echo.Endpoint, tlsEcho.CertificateFile)))
    {
        var perSession = await ChurnWorkloads.IdleRssPerSessionAsync(fresh, () => BridgeStream.OpenAsync(fresh.Url, echo.Endpoint, binary: false), idleSessions,
            TimeSpan.FromSeconds(double.Parse(Option("--idle-hold") ?? "0", CultureInfo.InvariantCulture)), echoBytes);
        Console.WriteLine();
        Console.WriteLine(FormattableString.Invariant($"idle: {idleSessions} bridged sessions (WebSocket + TCP to the echo server each{(echoBytes > 0 ? $", {echoBytes} bytes echoed once" : "")}) cost the server {perSession / 1024:F1} KiB of RSS per session (the bench's client)"));
    }
    if (NodeClient.Available())
    {
        await using var fresh = await ServerProcess.StartAsync(ServerProcess.BenchConfig(echo.Endpoint, tlsEcho.CertificateFile));
        // The same warm-up as the bench's own client: one session first, then the baseline.
        var before = await NodeClient.HoldIdleAsync(new NodeClient.Route("json", echo.Endpoint.ToString(), fresh.Url), 1, async () =>
        {
            await Task.Delay(1000); // a measurement pause, as in IdleRssPerSessionAsync
            return fresh.Rss();
        });
        var after = await NodeClient.HoldIdleAsync(new NodeClient.Route("json", echo.Endpoint.ToString(), fresh.Url), idleSessions, async () =>
        {
            await Task.Delay(2000); // let the server settle (a measurement pause)
            return fresh.Rss();
        });
        Console.WriteLine(FormattableString.Invariant($"idle: {idleSessions} bridged sessions opened by Node's ws cost the server {(after - before) / (double)idleSessions / 1024:F1} KiB of RSS per session"));
    }
}
return 0;

string? Option(string name)
{
    var at = Array.IndexOf(args, name);
    return at >= 0 && at + 1 < args.Length ? args[at + 1] : null;
}

string[] Options(string name) => [.. args.Select((arg, at) => (arg, at)).Where(a => a.arg == name && a.at + 1 < args.Length).Select(a => args[a.at + 1])];

internal sealed record Row(string Name, double One, double Sixteen, double P50, double P99, double Connects);
