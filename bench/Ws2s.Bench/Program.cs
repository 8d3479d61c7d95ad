using System.Globalization;
using Ws2s.Bench;
using Ws2s.Host;

// ws2s bench: the same workloads against plain TCP (the baseline) and through a ws2s-protocol
// bridge, in one run, reported as ratios. Usage:
//   dotnet run -c Release --project bench/Ws2s.Bench -- [--server ws://HOST:PORT/] [--seconds 5] [--connections 1]
//   dotnet run -c Release --project bench/Ws2s.Bench -- --soak-mib 1024 [--read-mib-per-second 1] [--soak-seconds N]
// Without --server it starts ws2s for .NET in this process on a loopback port. With --server it
// measures any server speaking the protocol (e.g. the original Python ws2s) that may dial loopback.

if (Option("--soak-mib") is { } soakMib)
{
    var limit = Option("--soak-seconds") is { } s ? TimeSpan.FromSeconds(double.Parse(s, CultureInfo.InvariantCulture)) : (TimeSpan?)null;
    await Soak.RunAsync(long.Parse(soakMib, CultureInfo.InvariantCulture) << 20,
        double.Parse(Option("--read-mib-per-second") ?? "1", CultureInfo.InvariantCulture) * (1 << 20), limit);
    return 0;
}

var seconds = double.Parse(Option("--seconds") ?? "5", CultureInfo.InvariantCulture);
var connections = int.Parse(Option("--connections") ?? "1", CultureInfo.InvariantCulture);
var duration = TimeSpan.FromSeconds(seconds);

using var echo = new EchoServer();
Microsoft.AspNetCore.Builder.WebApplication? app = null;
Uri server;
if (Option("--server") is { } given)
{
    server = new Uri(given);
}
else
{
    var config = Path.Combine(Directory.CreateTempSubdirectory("ws2s-bench-").FullName, "config.json");
    File.WriteAllText(config, """{"listen":{"host":"127.0.0.1","port":0},"allowConnectToServerLocal":true}""");
    app = Ws2sServer.Build(["--config", config, "--Logging:LogLevel:Default", "Warning"]);
    await app.StartAsync();
    server = new Uri(Ws2sServer.ListeningUrls(app).First());
}

Console.WriteLine($"ws2s bench: {Environment.ProcessorCount} cores, .NET {Environment.Version}, server {server}, {seconds} s per throughput run, {connections} connection(s), 16 KiB writes");
var plain = () => TcpStream.OpenAsync(echo.Endpoint);
var json = () => BridgeStream.OpenAsync(server, echo.Endpoint, binary: false);
var binary = () => BridgeStream.OpenAsync(server, echo.Endpoint, binary: true);

var baseline = await Workloads.ThroughputAsync(plain, connections, 16 * 1024, duration);
var jsonRate = await Workloads.ThroughputAsync(json, connections, 16 * 1024, duration);
var binaryRate = await Workloads.ThroughputAsync(binary, connections, 16 * 1024, duration);
var plainLatency = await Workloads.LatencyAsync(plain, 64, 5000);
var jsonLatency = await Workloads.LatencyAsync(json, 64, 5000);
var binaryLatency = await Workloads.LatencyAsync(binary, 64, 5000);

Console.WriteLine();
Console.WriteLine("| path | echo throughput | vs plain TCP | 64 B round trip p50 | p99 | p50 minus plain TCP |");
Console.WriteLine("|---|---|---|---|---|---|");
Row("plain TCP (baseline)", baseline, plainLatency);
Row("ws2s JSON mode (sendb / recv data)", jsonRate, jsonLatency);
Row("ws2s binary mode", binaryRate, binaryLatency);

if (app is not null) await app.StopAsync();
return 0;

void Row(string name, double rate, (double P50, double P99) latency) =>
    Console.WriteLine(FormattableString.Invariant(
        $"| {name} | {rate / 1e6:F1} MB/s | {rate / baseline * 100:F1} % | {latency.P50:F0} µs | {latency.P99:F0} µs | {latency.P50 - plainLatency.P50:+0;-0} µs |"));

string? Option(string name)
{
    var at = Array.IndexOf(args, name);
    return at >= 0 && at + 1 < args.Length ? args[at + 1] : null;
}
