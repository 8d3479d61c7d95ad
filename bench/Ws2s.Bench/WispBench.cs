using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.WebSockets;
using System.Threading.Channels;

namespace Ws2s.Bench;

/// <summary>
/// Wisp servers side by side, in one run (Wispmark's method: N WebSockets x M streams of echo): ws2s (ws2sd at /wisp/),
/// wisp-js's own server (npm), and wisp-server-python when its checkout is given. For each: MB/s echoed and the
/// server's CPU per MB (from /proc), open-echo-close p50 against a plain TCP connect-echo-close, and RSS per idle
/// stream. The same echo is then run by the wisp-js client (code nobody here wrote) against each server.
/// </summary>
internal static class WispBench
{
    /// <param name="Rounds">Throughput is measured in this many rounds, the servers taking turns in each, and the medians reported: on a
    /// noisy machine a burst of other work then falls on one round of one server, not on all of a server's measurement.</param>
    /// <param name="IdleByWispJs">Whether the wisp-js client holds the idle streams (else the bench's own client does): one of
    /// the two per run, as a server's heap is not the same after it held the first set.</param>
    /// <param name="Variants">Extra ws2sd processes, each with one environment variable set (<c>NAME=VALUE</c>), measured beside the
    /// shipped one in the same rounds: an A/B of a runtime or GC setting.</param>
    public sealed record Options(int Connections, int Streams, TimeSpan Duration, int IdleStreams, string? WispJsModules, string? PythonServer, int Opens,
        int Rounds = 3, IReadOnlyList<string>? Variants = null, bool IdleByWispJs = false);

    private sealed record Server(string Name, Uri Url, int Pid, IAsyncDisposable Process);

    public static async Task RunAsync(Options options)
    {
        using var echo = new EchoServer();
        var servers = new List<Server>();
        var config = ServerProcess.BenchConfig(echo.Endpoint).Replace("\"limits\":{", """
            "wisp":{"maxStreams":100000,"maxStreamOpensPerSecond":0},"limits":{"maxPeerConnectionsPerClient":1000000,
            """, StringComparison.Ordinal);
        try
        {
            var ws2s = await ServerProcess.StartAsync(config);
            servers.Add(new("ws2s (.NET)", new Uri(ws2s.Url, "/wisp/"), ws2s.Pid, ws2s));
            foreach (var variant in options.Variants ?? [])
            {
                if (variant.Split('=', 2) is not [var name, var value] || name.Length == 0)
                    throw new ArgumentException($"--wisp-variant takes NAME=VALUE (an environment variable for one more ws2sd), not {variant}");
                var other = await ServerProcess.StartAsync(config, new Dictionary<string, string> { [name] = value });
                servers.Add(new($"ws2s ({variant})", new Uri(other.Url, "/wisp/"), other.Pid, other));
            }
            if (options.WispJsModules is { } modules && await PeerRelay.WispJsAsync(modules) is { } wispJs)
                servers.Add(new("wisp-js 0.5.0 server (Node)", new Uri($"ws://127.0.0.1:{wispJs.Port}/"), wispJs.Pid, wispJs));
            if (options.PythonServer is { } python && await PeerRelay.WispPythonAsync(python) is { } wispPython)
                servers.Add(new("wisp-server-python", new Uri($"ws://127.0.0.1:{wispPython.Port}/"), wispPython.Pid, wispPython));
            Console.WriteLine($"Wisp bench: {Environment.ProcessorCount} cores, echo at {echo.Endpoint}; {options.Connections} WebSockets x {options.Streams} streams, "
                + $"16 KiB echo per stream, {options.Rounds} rounds of {options.Duration.TotalSeconds} s each; {options.Opens} open-echo-close; {options.IdleStreams} idle streams");
            // Two seconds of the workload first, not counted: a server measured in its first seconds (ws2sd's JIT still
            // compiling its hot paths) is not the server that runs for hours.
            foreach (var server in servers) await ThroughputAsync(server, echo.Endpoint, options with { Duration = TimeSpan.FromSeconds(2) });
            var rounds = servers.ToDictionary(s => s, _ => new List<(double MbPerSecond, double CpuMsPerMb)>());
            for (var round = 0; round < options.Rounds; round++)
                foreach (var server in servers)
                    rounds[server].Add(await ThroughputAsync(server, echo.Endpoint, options));
            var tcp = await OpenEchoCloseAsync(() => TcpOnceAsync(echo.Endpoint), options.Opens);
            Console.WriteLine($"plain TCP connect-echo-close: p50 {tcp.P50:F0} us, {tcp.PerSecond:F0}/s");
            Console.WriteLine("| server | MB/s | server CPU ms/MB | open-echo-close p50 (us) | over TCP (us) | opens/s | RSS per idle stream (KiB) |");
            Console.WriteLine("|---|---|---|---|---|---|---|");
            foreach (var server in servers)
            {
                var (mbPerSecond, cpuPerMb) = (Median(rounds[server].Select(r => r.MbPerSecond)), Median(rounds[server].Select(r => r.CpuMsPerMb)));
                await using var opener = await WispConnection.OpenAsync(server.Url);
                var opens = await OpenEchoCloseAsync(() => opener.OnceAsync(echo.Endpoint), options.Opens);
                var idle = options.IdleStreams > 0 && !options.IdleByWispJs ? await IdleRssAsync(server, echo.Endpoint, options.IdleStreams) : double.NaN;
                Console.WriteLine($"| {server.Name} | {mbPerSecond:F1} | {cpuPerMb:F2} | {opens.P50:F0} | {opens.P50 - tcp.P50:+0;-0} | {opens.PerSecond:F0} | {idle:F1} |");
            }
            Console.WriteLine();
            Console.WriteLine("Each round (MB/s, server CPU ms/MB):");
            foreach (var server in servers)
                Console.WriteLine($"  {server.Name}: " + string.Join("; ", rounds[server].Select(r => $"{r.MbPerSecond:F0}, {r.CpuMsPerMb:F2}")));
            if (options.WispJsModules is { } jsModules)
            {
                Console.WriteLine();
                // Two shapes of write: the test's mix (log-uniform 1 B to 16 KiB, mean about 2.4 KB: a packet per small write) and
                // 16 KiB writes (bulk traffic as libcurl.js and epoxy-tls send it: TLS records). Rounds interleaved; medians.
                foreach (var (shape, chunk) in new[] { ("writes of 1 B to 16 KiB, log-uniform", 0), ("16 KiB writes", 16384) })
                {
                    Console.WriteLine($"The wisp-js client (npm @mercuryworkshop/wisp-js 0.5.0, tests/Ws2s.Host.Tests/wisp/wisp-js-client.mjs): 100 streams x 1 MiB echo, one WebSocket, {shape}; median of {options.Rounds}");
                    Console.WriteLine("| server | ms | MB/s | server CPU ms/MB | each round (ms/MB) |");
                    Console.WriteLine("|---|---|---|---|---|");
                    var echoes = servers.ToDictionary(s => s, _ => new List<(double Ms, double CpuMsPerMb, bool Ok)>());
                    for (var round = 0; round < options.Rounds; round++)
                        foreach (var server in servers)
                        {
                            var cpu = ProcessCpu.TreeSeconds(server.Pid);
                            var (ms, ok) = await WispJsEchoAsync(jsModules, server.Url, echo.Endpoint, streams: 100, bytes: 1 << 20, chunk);
                            echoes[server].Add((ms, (ProcessCpu.TreeSeconds(server.Pid) - cpu) * 1000 / 200.0, ok)); // 100 x 1 MiB up and back
                        }
                    foreach (var server in servers)
                    {
                        var runs = echoes[server];
                        var (ms, cpuPerMb) = (Median(runs.Select(r => r.Ms)), Median(runs.Select(r => r.CpuMsPerMb)));
                        Console.WriteLine(runs.All(r => r.Ok)
                            ? $"| {server.Name} | {ms:F0} | {200.0 / (ms / 1000):F1} | {cpuPerMb:F2} | {string.Join(", ", runs.Select(r => r.CpuMsPerMb.ToString("F2", CultureInfo.InvariantCulture)))} |"
                            : $"| {server.Name} | failed | | | |");
                    }
                    Console.WriteLine();
                }
                Console.WriteLine();
                Console.WriteLine($"The wisp-js client again: {options.Opens} open-echo-close (CONNECT and one byte sent at once, the byte back, CLOSE) against as many "
                    + "plain TCP connect-echo-close from the same Node process (net), interleaved; then RSS per idle stream, the streams held by wisp-js over one WebSocket");
                Console.WriteLine("| server | open-echo-close p50 (us) | Node TCP p50 (us) | over TCP (us) | RSS per idle stream (KiB) |");
                Console.WriteLine("|---|---|---|---|---|");
                foreach (var server in servers)
                {
                    var opens = await WispJsAsync(jsModules, server.Url, echo.Endpoint, "opens", options.Opens);
                    var idle = options.IdleStreams > 0 && options.IdleByWispJs ? await WispJsIdleRssAsync(jsModules, server, echo.Endpoint, options.IdleStreams) : double.NaN;
                    Console.WriteLine(opens?["ok"]?.GetValue<bool>() == true
                        ? $"| {server.Name} | {opens["wispP50Us"]!.GetValue<double>():F0} | {opens["tcpP50Us"]!.GetValue<double>():F0} | {opens["wispP50Us"]!.GetValue<double>() - opens["tcpP50Us"]!.GetValue<double>():+0;-0} | {idle:F1} |"
                        : $"| {server.Name} | failed: {opens?["error"]} | | | {idle:F1} |");
                }
            }
        }
        finally
        {
            foreach (var server in servers) await server.Process.DisposeAsync();
        }
    }

    /// <summary>MB/s echoed (counted once each way) over Connections x Streams streams for the duration, and the server's CPU ms per MB.</summary>
    private static async Task<(double MbPerSecond, double CpuMsPerMb)> ThroughputAsync(Server server, IPEndPoint echo, Options options)
    {
        var connections = new List<WispConnection>();
        for (var i = 0; i < options.Connections; i++) connections.Add(await WispConnection.OpenAsync(server.Url));
        var streams = new List<WispConnection.Stream>();
        foreach (var connection in connections)
            for (var s = 0; s < options.Streams; s++) streams.Add(await connection.OpenStreamAsync(echo));
        var chunk = new byte[16 * 1024];
        Random.Shared.NextBytes(chunk);
        foreach (var stream in streams) await stream.EchoAsync(chunk); // every stream connected and warm
        long bytes = 0;
        var cpu = ProcessCpu.TreeSeconds(server.Pid);
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(streams.Select(async stream =>
        {
            while (clock.Elapsed < options.Duration)
            {
                await stream.EchoAsync(chunk);
                Interlocked.Add(ref bytes, 2L * chunk.Length);
            }
        }));
        var seconds = clock.Elapsed.TotalSeconds;
        var cpuMs = (ProcessCpu.TreeSeconds(server.Pid) - cpu) * 1000;
        foreach (var connection in connections) await connection.DisposeAsync();
        var mb = bytes / 1e6;
        return (mb / seconds, cpuMs / mb);
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private sealed record Latency(double P50, double PerSecond);

    private static async Task<Latency> OpenEchoCloseAsync(Func<Task> once, int count)
    {
        for (var i = 0; i < Math.Min(100, count); i++) await once(); // warm-up
        var samples = new double[count];
        var all = Stopwatch.StartNew();
        for (var i = 0; i < count; i++)
        {
            var start = Stopwatch.GetTimestamp();
            await once();
            samples[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        }
        Array.Sort(samples);
        return new(samples[count / 2], count / all.Elapsed.TotalSeconds);
    }

    private static async Task TcpOnceAsync(IPEndPoint echo)
    {
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(echo);
        await socket.SendAsync(new byte[] { 42 });
        var one = new byte[1];
        await socket.ReceiveAsync(one);
    }

    /// <summary>RSS the server adds per stream held open (each echoed once, so connected) over WebSockets of 250 streams.</summary>
    private static async Task<double> IdleRssAsync(Server server, IPEndPoint echo, int count)
    {
        var before = ProcessMemory.Rss(server.Pid);
        var connections = new List<WispConnection>();
        var streams = new List<WispConnection.Stream>();
        for (var opened = 0; opened < count;)
        {
            var connection = await WispConnection.OpenAsync(server.Url);
            connections.Add(connection);
            for (var s = 0; s < 250 && opened < count; s++, opened++) streams.Add(await connection.OpenStreamAsync(echo));
        }
        var ping = new byte[] { 7 };
        foreach (var batch in streams.Chunk(500)) await Task.WhenAll(batch.Select(s => s.EchoAsync(ping)));
        var after = ProcessMemory.Rss(server.Pid);
        if (Environment.GetEnvironmentVariable("WISP_BENCH_HOLD_SECONDS") is { } hold)
        {
            // For a heap dump of the server while the streams are open (dotnet-gcdump collect -p PID).
            Console.Error.WriteLine($"holding {count} idle streams on {server.Name} (pid {server.Pid}) for {hold} s");
            await Task.Delay(TimeSpan.FromSeconds(double.Parse(hold, CultureInfo.InvariantCulture)));
        }
        foreach (var connection in connections) await connection.DisposeAsync();
        return (after - before) / 1024.0 / count;
    }

    private static ProcessStartInfo WispJsClient(string modules, Uri url, IPEndPoint echo, string mode, int streams)
    {
        var info = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "node", "wisp-js-client.mjs"), "--modules", modules, "--url", url.ToString(), "--version", "1",
                     "--host", "127.0.0.1", "--port", echo.Port.ToString(CultureInfo.InvariantCulture), "--mode", mode, "--streams", $"{streams}", "--timeout-ms", "300000" })
            info.ArgumentList.Add(arg);
        return info;
    }

    /// <summary>Runs the wisp-js client in <paramref name="mode"/> to its end; its one line of JSON.</summary>
    private static async Task<System.Text.Json.Nodes.JsonNode?> WispJsAsync(string modules, Uri url, IPEndPoint echo, string mode, int streams)
    {
        using var process = Process.Start(WispJsClient(modules, url, echo, mode, streams))!;
        process.StandardInput.Close();
        var errors = process.StandardError.ReadToEndAsync();
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        await errors;
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries) is [.., var last] ? System.Text.Json.Nodes.JsonNode.Parse(last) : null;
    }

    /// <summary>RSS the server adds per stream that the wisp-js client holds open (each echoed once), all over one WebSocket.</summary>
    private static async Task<double> WispJsIdleRssAsync(string modules, Server server, IPEndPoint echo, int count)
    {
        var before = ProcessMemory.Rss(server.Pid);
        using var process = Process.Start(WispJsClient(modules, server.Url, echo, "idle", count))!;
        var errors = process.StandardError.ReadToEndAsync();
        var line = await process.StandardOutput.ReadLineAsync();
        var rest = process.StandardOutput.ReadToEndAsync(); // drained, so a client that says more never blocks on a full pipe
        var held = line is null ? null : System.Text.Json.Nodes.JsonNode.Parse(line);
        var after = ProcessMemory.Rss(server.Pid);
        process.StandardInput.Close(); // the client lets go of its streams and ends
        await process.WaitForExitAsync();
        await Task.WhenAll(rest, errors);
        return held?["held"]?.GetValue<int>() == count ? (after - before) / 1024.0 / count : double.NaN;
    }

    private static async Task<(double Ms, bool Ok)> WispJsEchoAsync(string modules, Uri url, IPEndPoint echo, int streams, int bytes, int chunk)
    {
        var script = Path.Combine(AppContext.BaseDirectory, "node", "wisp-js-client.mjs");
        var info = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { script, "--modules", modules, "--url", url.ToString(), "--version", "1", "--host", "127.0.0.1",
                     "--port", echo.Port.ToString(CultureInfo.InvariantCulture), "--streams", $"{streams}", "--bytes", $"{bytes}", "--timeout-ms", "120000" })
            info.ArgumentList.Add(arg);
        if (chunk > 0) foreach (var arg in new[] { "--chunk", $"{chunk}" }) info.ArgumentList.Add(arg);
        using var process = Process.Start(info)!;
        var errors = process.StandardError.ReadToEndAsync();
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        await errors;
        var line = System.Text.Json.Nodes.JsonNode.Parse(output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last())!;
        return (line["ms"]!.GetValue<double>(), line["ok"]!.GetValue<bool>());
    }

    /// <summary>A Wisp v1 client over one WebSocket: streams by id, their DATA demultiplexed by a receive loop, credits kept.</summary>
    internal sealed class WispConnection : IAsyncDisposable
    {
        private readonly ClientWebSocket _socket;
        private readonly SemaphoreSlim _sending = new(1, 1);
        private readonly Dictionary<uint, Stream> _streams = [];
        private readonly Task _receiving;
        private readonly int _initialCredits;
        private uint _nextId;

        private WispConnection(ClientWebSocket socket, int credits)
        {
            _socket = socket;
            _initialCredits = credits;
            _receiving = ReceiveAsync();
        }

        public static async Task<WispConnection> OpenAsync(Uri url)
        {
            var socket = new ClientWebSocket();
            await socket.ConnectAsync(url, CancellationToken.None);
            var first = new byte[64];
            var hello = await socket.ReceiveAsync(first, CancellationToken.None);
            if (hello.Count < 9 || first[0] != 3) throw new InvalidOperationException("the server's first packet is not CONTINUE");
            return new WispConnection(socket, (int)BinaryPrimitives.ReadUInt32LittleEndian(first.AsSpan(5)));
        }

        public async Task<Stream> OpenStreamAsync(IPEndPoint target)
        {
            var id = ++_nextId;
            var stream = new Stream(this, id, _initialCredits);
            lock (_streams) _streams[id] = stream;
            var host = System.Text.Encoding.ASCII.GetBytes(target.Address.ToString());
            var payload = new byte[3 + host.Length];
            payload[0] = 1;
            BinaryPrimitives.WriteUInt16LittleEndian(payload.AsSpan(1), (ushort)target.Port);
            host.CopyTo(payload, 3);
            await SendAsync(1, id, payload);
            return stream;
        }

        /// <summary>Open a stream, echo one byte through it, close it.</summary>
        public async Task OnceAsync(IPEndPoint target)
        {
            var stream = await OpenStreamAsync(target);
            await stream.EchoAsync([42]);
            await SendAsync(4, stream.Id, new byte[] { 0x02 });
            lock (_streams) _streams.Remove(stream.Id);
        }

        private async Task SendAsync(byte type, uint id, ReadOnlyMemory<byte> payload)
        {
            var packet = new byte[5 + payload.Length];
            packet[0] = type;
            BinaryPrimitives.WriteUInt32LittleEndian(packet.AsSpan(1), id);
            payload.CopyTo(packet.AsMemory(5));
            await _sending.WaitAsync();
            try
            {
                await _socket.SendAsync(packet, WebSocketMessageType.Binary, true, CancellationToken.None);
            }
            finally
            {
                _sending.Release();
            }
        }

        private async Task ReceiveAsync()
        {
            var buffer = new byte[1 << 20];
            try
            {
                while (true)
                {
                    var length = 0;
                    ValueWebSocketReceiveResult result;
                    do
                    {
                        result = await _socket.ReceiveAsync(buffer.AsMemory(length), CancellationToken.None);
                        length += result.Count;
                    } while (!result.EndOfMessage && result.MessageType != WebSocketMessageType.Close);
                    if (result.MessageType == WebSocketMessageType.Close || length < 5) return;
                    var id = BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(1));
                    Stream? stream;
                    lock (_streams) _streams.TryGetValue(id, out stream);
                    if (stream is null) continue;
                    switch (buffer[0])
                    {
                        case 2: stream.Deliver(buffer.AsSpan(5, length - 5).ToArray()); break;
                        case 3: stream.Grant((int)BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(5))); break;
                        case 4: stream.Deliver(null); break;
                    }
                }
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException) { }
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                await _socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "", CancellationToken.None);
            }
            catch (WebSocketException) { }
            await _receiving;
            _socket.Dispose();
        }

        internal sealed class Stream(WispConnection connection, uint id, int credits)
        {
            private readonly Channel<byte[]?> _received = Channel.CreateUnbounded<byte[]?>();
            private readonly SemaphoreSlim _credit = new(credits, int.MaxValue);
            private int _credits = credits;

            public uint Id => id;

            public void Deliver(byte[]? bytes) => _received.Writer.TryWrite(bytes);

            /// <summary>The client sets its credits from a CONTINUE (the protocol's rule).</summary>
            public void Grant(int value)
            {
                lock (_credit)
                {
                    var add = value - _credits;
                    _credits = value;
                    if (add > 0) _credit.Release(add);
                    else for (var i = 0; i < -add; i++) _credit.Wait(0);
                }
            }

            /// <summary>Sends <paramref name="bytes"/> as one DATA and reads until as many have come back.</summary>
            public async Task EchoAsync(byte[] bytes)
            {
                await _credit.WaitAsync();
                lock (_credit) _credits--;
                await connection.SendAsync(2, id, bytes);
                var back = 0;
                while (back < bytes.Length)
                {
                    var chunk = await _received.Reader.ReadAsync() ?? throw new InvalidOperationException($"stream {id} closed by the server");
                    back += chunk.Length;
                }
            }
        }
    }
}
