using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using System.Text.RegularExpressions;

namespace Ws2s.Host.Tests;

/// <summary>
/// Attack (issue 10, 5): clients that fill their sessions' queues behind a peer that never reads,
/// then vanish. Each such session used to stay until the idle timeout (an hour) with its buffers
/// and its slot in <c>maxSessionsPerClient</c>; all of them together were bounded by nothing.
/// </summary>
public sealed partial class VanishedClientTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("ws2s-vanished-").FullName;

    public void Dispose() => Directory.Delete(_home, recursive: true);

    private const int Clients = 4;

    /// <summary>Per session a queue of up to 4 MiB; all sessions together 256 KiB; keep-alive each second.</summary>
    private static readonly TestConfig Config = TestConfig.Loopback.With(o =>
    {
        o.Limits.KeepAliveSeconds = 1;
        o.Limits.MaxSessionsPerClient = 4;
        o.Limits.MaxMessageBytes = 65536;
        o.Limits.MaxPendingBytes = 4194304;
        o.Limits.MaxPendingBytesTotal = 262144;
    });

    /// <summary>A peer that accepts and never reads, with a small receive buffer so it fills soon.</summary>
    private sealed class Deaf : IDisposable
    {
        private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        private readonly List<Socket> _accepted = [];

        public Deaf()
        {
            _listener.ReceiveBufferSize = 4096;
            _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _listener.Listen();
            _ = AcceptAsync();
        }

        public int Port => ((IPEndPoint)_listener.LocalEndPoint!).Port;

        private async Task AcceptAsync()
        {
            try
            {
                while (true)
                {
                    var socket = await _listener.AcceptAsync();
                    lock (_accepted) _accepted.Add(socket);
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        }

        public void Dispose()
        {
            _listener.Dispose();
            lock (_accepted) foreach (var socket in _accepted) socket.Dispose();
        }
    }

    /// <summary>
    /// Connects in binary mode to the deaf peer and sends 64 KiB frames until one is not taken within
    /// two seconds: the session is holding the client back.
    /// </summary>
    private static async Task<RawWebSocket> HeldBackAsync(Uri url, int deafPort)
    {
        var client = await RawWebSocket.OpenAsync(url);
        await client.SendTextAsync($$"""{"command":"connect","host":"127.0.0.1","port":{{deafPort}},"binary":true}""");
        Assert.Contains("connect done", await client.ReceiveTextAsync());
        var chunk = new byte[64 * 1024];
        for (var sent = 0L; sent < 256L << 20; sent += chunk.Length)
        {
            var send = client.Socket!.SendAsync(chunk, WebSocketMessageType.Binary, true, CancellationToken.None);
            if (await Task.WhenAny(send, Task.Delay(TimeSpan.FromSeconds(2))) != send) return client;
        }
        Assert.Fail("256 MiB went into a session whose peer never reads: it never held the client back");
        return client;
    }

    /// <summary>
    /// ws2sd in its own process: in one process, OpenTelemetry's exporter of one host would also
    /// see the other hosts' meters of the same name (tests run in parallel).
    /// </summary>
    private sealed class Server(ServerProcess process, Uri url) : IAsyncDisposable
    {
        public Uri Url => url;

        public ValueTask DisposeAsync() => process.DisposeAsync();
    }

    private async Task<Server> ServerAsync()
    {
        var config = Path.Combine(_home, "config.json");
        await File.WriteAllTextAsync(config, Config);
        var process = ServerProcess.Start(["--config", config], home: _home);
        return new Server(process, await process.ListeningUrlAsync());
    }

    private static async Task<long> GaugeAsync(HttpClient http, Uri url, string name)
    {
        var text = await http.GetStringAsync(new Uri(new Uri(url.ToString().Replace("ws://", "http://")), "/metrics"));
        var match = Regex.Match(text, $@"^{name}\{{[^}}]*\}} (\d+)", RegexOptions.Multiline);
        Assert.True(match.Success, $"{name} is not in /metrics:\n{text}");
        return long.Parse(match.Groups[1].Value);
    }

    /// <summary>Polls a gauge until it reads <paramref name="expected"/>; returns the last reading.</summary>
    private static async Task<long> GaugeReachesAsync(HttpClient http, Uri url, string name, long expected, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        long value;
        while ((value = await GaugeAsync(http, url, name)) != expected && DateTime.UtcNow < deadline)
            await Task.Delay(100);
        return value;
    }

    /// <summary>Reads a gauge every half second until it is above zero and the same three times running.</summary>
    private static async Task<long> GaugeSettlesAsync(HttpClient http, Uri url, string name)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        var readings = new List<long>();
        while (DateTime.UtcNow < deadline)
        {
            readings.Add(await GaugeAsync(http, url, name));
            if (readings.Count >= 3 && readings[^1] > 0 && readings[^3..].Distinct().Count() == 1) break;
            await Task.Delay(500);
        }
        return readings[^1];
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Clients_that_vanish_while_held_back_free_their_sessions_within_seconds(bool reset)
    {
        using var deaf = new Deaf();
        await using var host = await ServerAsync();
        using var http = new HttpClient();
        var clients = new List<RawWebSocket>();
        for (var i = 0; i < Clients; i++) clients.Add(await HeldBackAsync(host.Url, deaf.Port));
        Assert.Equal(Clients, await GaugeAsync(http, host.Url, "ws2s_sessions_active"));

        // They vanish without a close frame: the process ends (FIN) or the connection is reset.
        foreach (var client in clients) client.Vanish(reset);

        Assert.Equal(0, await GaugeReachesAsync(http, host.Url, "ws2s_sessions_active", 0, TimeSpan.FromSeconds(15)));
        Assert.Equal(0, await GaugeAsync(http, host.Url, "ws2s_pending_bytes"));
        // Their slots are free: the same address opens as many sessions as before.
        for (var i = 0; i < Clients; i++)
        {
            using var again = await RawWebSocket.OpenAsync(host.Url);
            Assert.StartsWith("HTTP/1.1 101", again.Status);
        }
    }

    [Fact]
    public async Task All_sessions_together_queue_no_more_than_the_server_wide_budget()
    {
        using var deaf = new Deaf();
        await using var host = await ServerAsync();
        using var http = new HttpClient();
        var clients = new List<RawWebSocket>();
        for (var i = 0; i < Clients; i++) clients.Add(await HeldBackAsync(host.Url, deaf.Port));

        // Alone, each session would queue up to 4 MiB (16 MiB in all). Together they hold at most the
        // 256 KiB budget plus one message each (a session with an empty queue may always take one).
        // A send can stall on a busy machine before anything queues: wait until the queues stop growing.
        var pending = await GaugeSettlesAsync(http, host.Url, "ws2s_pending_bytes");
        Assert.InRange(pending, 1, 262144 + Clients * 65536);
        foreach (var client in clients) client.Dispose();
    }
}
