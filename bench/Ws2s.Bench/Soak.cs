using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text.Json;

namespace Ws2s.Bench;

/// <summary>
/// Backpressure soak: a peer pushes as fast as TCP lets it toward a client that reads slowly. The
/// server runs as its own process so its RSS can be read from /proc; bounded buffering means its RSS
/// stays flat however much the peer has left to send.
/// </summary>
internal static class Soak
{
    public static async Task RunAsync(long totalBytes, double readBytesPerSecond, TimeSpan? limit)
    {
        using var source = new TcpListener(IPAddress.Loopback, 0);
        source.Start();
        var peerPort = ((IPEndPoint)source.LocalEndpoint).Port;
        _ = PushAsync(source, totalBytes);

        await using var server = await ServerProcess.StartAsync(ServerProcess.BenchConfig((IPEndPoint)source.LocalEndpoint));
        var url = server.Url;
        {
            using var ws = new ClientWebSocket();
            ws.Options.SetRequestHeader("Origin", "http://localhost");
            await ws.ConnectAsync(url, CancellationToken.None);
            await ws.SendAsync(JsonSerializer.SerializeToUtf8Bytes(new { command = "connect", host = "127.0.0.1", port = peerPort }),
                WebSocketMessageType.Text, true, CancellationToken.None);

            var baseline = server.Rss();
            var peak = baseline;
            var buffer = new byte[1 << 20];
            long received = 0;
            var clock = Stopwatch.StartNew();
            var nextReport = TimeSpan.FromSeconds(10);
            Console.WriteLine($"soak: peer pushes {totalBytes / (1 << 20)} MiB, client reads {readBytesPerSecond / (1 << 20):F1} MiB/s (JSON mode); server RSS at start {baseline / 1024} KiB");
            while (received < totalBytes && (limit is null || clock.Elapsed < limit))
            {
                var length = 0;
                WebSocketReceiveResult result;
                do
                {
                    result = await ws.ReceiveAsync(new ArraySegment<byte>(buffer, length, buffer.Length - length), CancellationToken.None);
                    length += result.Count;
                } while (!result.EndOfMessage);
                using var json = JsonDocument.Parse(buffer.AsMemory(0, length));
                if (json.RootElement.GetProperty("code").GetInt32() == -1)
                    received += json.RootElement.GetProperty("data").GetBytesFromBase64().Length;
                // Pace the reader: never ahead of the target rate.
                var due = TimeSpan.FromSeconds(received / readBytesPerSecond);
                if (due > clock.Elapsed) await Task.Delay(due - clock.Elapsed);
                peak = Math.Max(peak, server.Rss());
                if (clock.Elapsed > nextReport)
                {
                    Console.WriteLine($"  {clock.Elapsed.TotalSeconds:F0} s: {received / (1 << 20)} MiB read, server RSS {server.Rss() / 1024} KiB (peak {peak / 1024} KiB)");
                    nextReport += TimeSpan.FromSeconds(10);
                }
            }
            Console.WriteLine($"soak: read {received / (1 << 20)} MiB in {clock.Elapsed.TotalSeconds:F0} s; server RSS grew by {(peak - baseline) / 1024} KiB at most (start {baseline / 1024} KiB, peak {peak / 1024} KiB)");
        }
    }

    private static async Task PushAsync(TcpListener listener, long total)
    {
        using var socket = await listener.AcceptSocketAsync();
        var chunk = new byte[64 * 1024];
        for (long sent = 0; sent < total; sent += chunk.Length)
        {
            Pattern.Fill(sent, chunk);
            await socket.SendAsync(chunk);
        }
        socket.Shutdown(SocketShutdown.Send);
    }
}
