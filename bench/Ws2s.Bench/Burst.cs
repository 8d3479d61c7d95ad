using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text.Json;

namespace Ws2s.Bench;

/// <summary>
/// Memory after a burst: <c>sessions</c> clients each fill their session's queue toward a peer that never
/// reads (the server stops reading them at <c>limits.maxPendingBytes</c>), then all vanish at once; the
/// server's RSS is read before, at the peak, and every few seconds after, to see how much of the burst it
/// gives back and how soon.
/// </summary>
internal static class Burst
{
    public static async Task RunAsync(int sessions, TimeSpan watch, bool json)
    {
        // The peer: accepts and never reads.
        using var sink = new TcpListener(IPAddress.Loopback, 0);
        sink.Start(4096);
        var held = new List<Socket>();
        _ = Task.Run(async () =>
        {
            while (true)
            {
                var socket = await sink.AcceptSocketAsync();
                lock (held) held.Add(socket);
            }
        });
        await using var server = await ServerProcess.StartAsync(ServerProcess.BenchConfig((IPEndPoint)sink.LocalEndpoint));
        var target = (IPEndPoint)sink.LocalEndpoint;

        // One small session first, so the baseline includes what any session warms up (JIT, pools).
        using (var warm = await OpenAsync(server.Url, target, json)) await FillAsync(warm, json, 1 << 20);
        await Task.Delay(2000); // a measurement pause
        var before = server.Rss();
        Console.WriteLine($"burst: {sessions} sessions ({(json ? "JSON" : "binary")} mode) each filling its queue toward a peer that never reads; server RSS before {before >> 20} MiB");

        var clients = await Task.WhenAll(Enumerable.Range(0, sessions).Select(_ => OpenAsync(server.Url, target, json)));
        var clock = Stopwatch.StartNew();
        var sent = await Task.WhenAll(clients.Select(c => FillAsync(c, json, long.MaxValue)));
        var peak = server.Rss();
        Console.WriteLine($"  full after {clock.Elapsed.TotalSeconds:F1} s: {sent.Sum() >> 20} MiB taken from the clients, server RSS {peak >> 20} MiB");

        foreach (var client in clients) client.Abort(); // gone at once, as a burst of clients that gave up
        clock.Restart();
        var samples = new List<(double Seconds, long Rss)>();
        while (clock.Elapsed < watch)
        {
            await Task.Delay(TimeSpan.FromSeconds(5)); // sampling, not synchronisation
            samples.Add((clock.Elapsed.TotalSeconds, server.Rss()));
        }
        Console.WriteLine("  after they left: " + string.Join(", ", samples.Select(s => $"{s.Seconds:F0} s {s.Rss >> 20} MiB")));
        var last = samples[^1].Rss;
        Console.WriteLine($"burst: RSS before {before >> 20} MiB, peak {peak >> 20} MiB, {watch.TotalSeconds:F0} s after {last >> 20} MiB ({(double)last / before:F2}× before)");
        lock (held) foreach (var socket in held) socket.Dispose();
    }

    private static async Task<ClientWebSocket> OpenAsync(Uri server, IPEndPoint target, bool json)
    {
        var ws = new ClientWebSocket();
        await ws.ConnectAsync(server, CancellationToken.None);
        await ws.SendAsync(JsonSerializer.SerializeToUtf8Bytes(new { command = "connect", host = "127.0.0.1", port = target.Port, binary = !json }),
            WebSocketMessageType.Text, true, CancellationToken.None);
        var answer = new byte[4096];
        var result = await ws.ReceiveAsync(answer, CancellationToken.None);
        using var reply = JsonDocument.Parse(answer.AsMemory(0, result.Count));
        if (reply.RootElement.GetProperty("code").GetInt32() != 0) throw new InvalidOperationException($"connect failed: {reply.RootElement}");
        // Answers to sendb ("sendb done") are read and dropped, so the client side never holds the server back.
        _ = Task.Run(async () =>
        {
            try
            {
                while (ws.State == WebSocketState.Open) await ws.ReceiveAsync(answer, CancellationToken.None);
            }
            catch (Exception e) when (e is WebSocketException or ObjectDisposedException or OperationCanceledException) { }
        });
        return ws;
    }

    /// <summary>Sends 64 KiB messages until <paramref name="limit"/> bytes, or until one is not taken within a second (the server stopped reading).</summary>
    private static async Task<long> FillAsync(ClientWebSocket ws, bool json, long limit)
    {
        var chunk = new byte[64 * 1024];
        var message = json ? JsonSerializer.SerializeToUtf8Bytes(new { command = "sendb", data = Convert.ToBase64String(chunk) }) : chunk;
        long sent = 0;
        while (sent < limit)
        {
            var send = ws.SendAsync(message, json ? WebSocketMessageType.Text : WebSocketMessageType.Binary, true, CancellationToken.None);
            if (await Task.WhenAny(send, Task.Delay(TimeSpan.FromSeconds(1))) != send) break; // held back: the queue is full
            sent += chunk.Length;
        }
        return sent;
    }
}
