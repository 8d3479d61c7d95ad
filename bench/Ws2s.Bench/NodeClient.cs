using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Ws2s.Bench;

/// <summary>
/// The bench's second client: Node's <c>ws</c> (bench/node/client.cjs, copied beside this tool), a WebSocket
/// client nobody here wrote, run as its own process for each measurement so that every figure is published
/// from both clients. Available when <c>node</c> is on PATH and the <c>ws</c> module resolves (Debian's
/// node-ws, or <c>npm install ws</c> in bench/node).
/// </summary>
internal static class NodeClient
{
    private static readonly string Script = Path.Combine(AppContext.BaseDirectory, "node", "client.cjs");

    /// <summary>How to reach one path with the Node client: its protocol, the target, and the bridge's URL (none for TCP).</summary>
    public sealed record Route(string Protocol, string Target, Uri? Url = null);

    public static bool Available()
    {
        try
        {
            using var probe = Process.Start(new ProcessStartInfo("node", ["-e", "try{require('ws')}catch{require('/usr/share/nodejs/ws')}"])
            {
                RedirectStandardError = true, RedirectStandardOutput = true,
            })!;
            probe.WaitForExit();
            return probe.ExitCode == 0 && File.Exists(Script);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false; // no node on PATH
        }
    }

    private static ProcessStartInfo Command(Route route, string work, IEnumerable<string> more)
    {
        var info = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        info.ArgumentList.Add(Script);
        foreach (var word in new[] { "--path", route.Protocol, "--target", route.Target, "--work", work }.Concat(more)) info.ArgumentList.Add(word);
        if (route.Url is not null)
        {
            info.ArgumentList.Add("--url");
            info.ArgumentList.Add(route.Url.ToString());
        }
        return info;
    }

    /// <summary>Runs one workload to its end and returns the JSON line it printed.</summary>
    public static async Task<JsonElement> RunAsync(Route route, string work, params string[] more)
    {
        using var process = Process.Start(Command(route, work, more))!;
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0) throw new InvalidOperationException($"node client {work} on {route}: {await errors}");
        return JsonDocument.Parse((await output).Trim().Split('\n')[^1]).RootElement.Clone();
    }

    /// <summary>
    /// Opens <paramref name="count"/> sessions with the Node client and keeps them open while <paramref name="measure"/>
    /// runs; then closes them.
    /// </summary>
    public static async Task<T> HoldIdleAsync<T>(Route route, int count, Func<Task<T>> measure)
    {
        using var process = Process.Start(Command(route, "idle", ["--count", count.ToString(CultureInfo.InvariantCulture)]))!;
        var errors = process.StandardError.ReadToEndAsync();
        if (await process.StandardOutput.ReadLineAsync() is not { } opened || !opened.Contains("\"open\"", StringComparison.Ordinal))
            throw new InvalidOperationException($"node client could not open {count} sessions: {await errors}");
        var result = await measure();
        process.StandardInput.Close();
        await process.WaitForExitAsync();
        return result;
    }

    public static double Number(JsonElement result, string name) => result.GetProperty(name).GetDouble();

    /// <summary>Runs the bench's workloads on each route with the Node client and prints their table (server CPU where a route has it).</summary>
    public static async Task MeasureAsync(List<(string Name, Route Route, Func<double>? Cpu)> routes, double seconds)
    {
        var nodeRows = new List<(string Name, double One, double P50, double P99, double Connects, double MsPerMb, double MsPerSession)>();
        var secondsText = seconds.ToString(CultureInfo.InvariantCulture);
        foreach (var (name, route, serverCpu) in routes)
        {
            Console.Error.WriteLine($"bench: {name}, Node ws client");
            await RunAsync(route, "latency", "--count", "1000"); // warm-up
            var cpu = serverCpu?.Invoke() ?? 0;
            var flat = await RunAsync(route, "throughput", "--seconds", secondsText);
            var perMb = serverCpu is null ? double.NaN : (serverCpu() - cpu) * 1000 / (Number(flat, "bytes") / 1e6);
            var rtt = await RunAsync(route, "latency", "--count", "5000");
            cpu = serverCpu?.Invoke() ?? 0;
            var churn = await RunAsync(route, "connects", "--count", "3000", "--workers", "8");
            var perSession = serverCpu is null ? double.NaN : (serverCpu() - cpu) * 1000 / 3000;
            nodeRows.Add((name, Number(flat, "bytesPerSecond"), Number(rtt, "p50"), Number(rtt, "p99"),
                Number(churn, "perSecond"), perMb, perSession));
        }
        var tcp = nodeRows[0];
        Console.WriteLine();
        Console.WriteLine("The same workloads with Node's ws as the client (bench/node/client.cjs):");
        Console.WriteLine();
        Console.WriteLine("| path (Node ws client) | throughput, 1 conn | vs TCP | 64 B RTT p50 | p99 | p50 − TCP | connects/s | vs TCP | server CPU per MB, 1 conn flat out | server CPU per session |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in nodeRows)
            Console.WriteLine(FormattableString.Invariant(
                $"| {r.Name} | {r.One / 1e6:F0} MB/s | {r.One / tcp.One * 100:F1} % | {r.P50:F0} µs | {r.P99:F0} µs | {r.P50 - tcp.P50:+0;-0} µs | {r.Connects:F0} | {r.Connects / tcp.Connects * 100:F0} % | {(double.IsNaN(r.MsPerMb) ? "" : $"{r.MsPerMb:F1} ms")} | {(double.IsNaN(r.MsPerSession) ? "" : $"{r.MsPerSession:F2} ms")} |"));
    }

    /// <summary>
    /// A WebSocket echo server on Node's <c>ws</c> (bench/node/echo-server.cjs), no relay behind it: what the Node client's
    /// WebSocket costs on its own, its tail latency above all. Stops when disposed.
    /// </summary>
    public sealed class EchoServer : IDisposable
    {
        private readonly Process _process;

        private EchoServer(Process process, int port) => (_process, Port) = (process, port);

        public int Port { get; }

        public double CpuSeconds() => ProcessCpu.TreeSeconds(_process.Id);

        public static async Task<EchoServer> StartAsync()
        {
            var info = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardInput = true };
            info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "node", "echo-server.cjs"));
            var process = Process.Start(info)!;
            var line = await process.StandardOutput.ReadLineAsync() ?? throw new InvalidOperationException("the node echo server did not start");
            return new EchoServer(process, JsonDocument.Parse(line).RootElement.GetProperty("port").GetInt32());
        }

        public void Dispose()
        {
            _process.StandardInput.Close();
            if (!_process.WaitForExit(5000)) _process.Kill();
            _process.Dispose();
        }
    }
}
