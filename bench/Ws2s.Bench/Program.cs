using System.Globalization;
using Ws2s.Bench;

// ws2s bench: the same workloads against plain TCP (the baseline) and through a bridge speaking the
// ws2s protocol, in one run, reported as ratios against the baseline. Usage:
//   dotnet run -c Release --project bench/Ws2s.Bench -- [--server ws://HOST:PORT/] [--seconds 5] [--idle-sessions 8000] [--idle-only] [--only JSON|binary|websockify]
// websockify (Debian package) is measured too when it is on PATH.
//   dotnet run -c Release --project bench/Ws2s.Bench -- --soak-mib 1024 [--read-mib-per-second 1] [--soak-seconds N]
//   dotnet run -c Release --project bench/Ws2s.Bench -- --micro     (BenchmarkDotNet: codec and core step)
// Without --server it starts ws2s for .NET (ws2sd, built beside this tool) as its own process on a
// loopback port. With --server it measures any server speaking the protocol (e.g. the original
// Python ws2s) that may dial loopback; binary mode and the idle-RSS figure need ws2s for .NET.

if (args.Contains("--micro"))
{
    BenchmarkDotNet.Running.BenchmarkSwitcher.FromAssembly(typeof(Micro).Assembly).Run(["--filter", "*", "--job", "short"]);
    return 0;
}
if (Option("--soak-mib") is { } soakMib)
{
    var limit = Option("--soak-seconds") is { } s ? TimeSpan.FromSeconds(double.Parse(s, CultureInfo.InvariantCulture)) : (TimeSpan?)null;
    await Soak.RunAsync(long.Parse(soakMib, CultureInfo.InvariantCulture) << 20,
        double.Parse(Option("--read-mib-per-second") ?? "1", CultureInfo.InvariantCulture) * (1 << 20), limit);
    return 0;
}

var seconds = double.Parse(Option("--seconds") ?? "5", CultureInfo.InvariantCulture);
var idleSessions = int.Parse(Option("--idle-sessions") ?? "2000", CultureInfo.InvariantCulture);
var duration = TimeSpan.FromSeconds(seconds);

using var echo = new EchoServer();
await using var own = Option("--server") is null ? await ServerProcess.StartAsync(ServerProcess.BenchConfig(echo.Endpoint)) : null;
await using var websockify = await Websockify.StartAsync(echo.Endpoint);
var server = own?.Url ?? new Uri(Option("--server")!);
var external = own is null;

Console.WriteLine($"ws2s bench: {Environment.ProcessorCount} cores, .NET {Environment.Version}, server {server}{(external ? " (external)" : " (ws2sd, own process)")}, {seconds} s per run, 16 KiB writes");
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
    paths.Add(("ws2s /websockify", () => RawStream.OpenAsync(new Uri(server, "/websockify?token=echo")), ownCpu));
}
if (websockify is not null) paths.Add(("websockify (Python)", () => RawStream.OpenAsync(websockify.Url), websockify.CpuSeconds));

var rows = new List<Row>();
var costs = new List<(string Name, double MsPerMb, double MsPerSession)>();
// --only NAME keeps the baseline and the paths whose name contains NAME (e.g. "JSON"), to profile one of them.
if (Option("--only") is { } only) paths.RemoveAll(p => p.Name != "plain TCP (baseline)" && !p.Name.Contains(only, StringComparison.OrdinalIgnoreCase));
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
    if (name != "plain TCP (baseline)") costs.Add((name, perMb, perSession));
}

if (rows.Count > 0) PrintTable(rows);
if (costs.Count > 0)
{
    Console.WriteLine();
    Console.WriteLine("| path | server CPU per MB echoed (1 conn) | server CPU per session (upgrade, connect, 64 B echo, close) |");
    Console.WriteLine("|---|---|---|");
    foreach (var (name, perMb, perSession) in costs)
        Console.WriteLine(FormattableString.Invariant($"| {name} | {perMb:F1} ms | {perSession:F2} ms |"));
    var jsonCost = costs.Find(c => c.Name == "ws2s JSON mode");
    var binaryCost = costs.Find(c => c.Name == "ws2s binary mode");
    if (jsonCost.Name is not null && binaryCost.Name is not null)
        Console.WriteLine(FormattableString.Invariant($"JSON mode costs {jsonCost.MsPerMb / binaryCost.MsPerMb:F2}× binary mode's CPU per MB."));
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

if (own is not null && idleSessions > 0)
{
    var perSession = await ChurnWorkloads.IdleRssPerSessionAsync(own, json, idleSessions);
    Console.WriteLine();
    Console.WriteLine(FormattableString.Invariant($"idle: {idleSessions} bridged sessions (WebSocket + TCP to the echo server each) cost the server {perSession / 1024:F1} KiB of RSS per session"));
}
return 0;

string? Option(string name)
{
    var at = Array.IndexOf(args, name);
    return at >= 0 && at + 1 < args.Length ? args[at + 1] : null;
}

internal sealed record Row(string Name, double One, double Sixteen, double P50, double P99, double Connects);
