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
