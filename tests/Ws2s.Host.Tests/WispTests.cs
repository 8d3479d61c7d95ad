using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using Ws2s.Host.Configuration;

namespace Ws2s.Host.Tests;

/// <summary>
/// The Wisp endpoint (/wisp/ by default): the real wisp-js client moving many streams at once, and by hand every
/// attack on it (odd packets, forbidden destinations, floods of CONNECT, credit abuse) and its admission.
/// </summary>
public sealed class WispTests
{
    /// <summary>Node's WebSocket sends no Origin: a server for programs, not pages, admits requests without one (<c>origins: ["*"]</c>).</summary>
    private static TestConfig ForPrograms(TestConfig config) => config.With(o => o.Origins = ["*"]);

    private static Uri WispUrl(Ws2sHost host, string query = "") => new(host.Url, "/wisp/" + query);

    [Fact]
    public async Task The_admission_answer_says_where_Wisp_is_served_to_a_client_it_admits_and_to_no_other()
    {
        await using var host = await Ws2sHost.StartAsync(TestConfig.Defaults.With(o =>
        {
            o.Tokens = ["t-wisp-1"];
            o.Wisp.Path = "/multi/";
        }));
        await using var none = await Ws2sHost.StartAsync(TestConfig.Defaults.With(o =>
        {
            o.Tokens = ["t-wisp-1"];
            o.Wisp.Path = "";
        }));
        using var http = new HttpClient();
        async Task<System.Text.Json.JsonElement> AskAsync(Ws2sHost server, string token)
        {
            using var ask = new HttpRequestMessage(HttpMethod.Get, new Uri($"http://127.0.0.1:{server.Url.Port}/.ws2s/admission"));
            ask.Headers.Add("X-Ws2s-Token", token);
            using var answer = await http.SendAsync(ask);
            return System.Text.Json.JsonDocument.Parse(await answer.Content.ReadAsStringAsync()).RootElement.Clone();
        }
        var admitted = await AskAsync(host, "t-wisp-1");
        Assert.Equal(200, admitted.GetProperty("status").GetInt32());
        Assert.Equal("/multi/", admitted.GetProperty("wisp").GetString());
        // A client it would refuse learns nothing of it; nor does any client of a server that serves no Wisp.
        var refused = await AskAsync(host, "wrong");
        Assert.Equal(401, refused.GetProperty("status").GetInt32());
        Assert.False(refused.TryGetProperty("wisp", out _));
        var noWisp = await AskAsync(none, "t-wisp-1");
        Assert.Equal(200, noWisp.GetProperty("status").GetInt32());
        Assert.False(noWisp.TryGetProperty("wisp", out _));
    }

    [SkippableTheory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task The_wisp_js_client_moves_100_streams_at_once_through_one_WebSocket_every_byte_checked(int version)
    {
        using var echo = Peer.Echo();
        await using var host = await Ws2sHost.StartAsync(ForPrograms(TestConfig.Loopback.With(o => o.Wisp.Motd = "welcome to ws2s")));
        var result = await WispClient.RunAsync("--url", WispUrl(host).ToString(), "--version", $"{version}", "--host", "127.0.0.1",
            "--port", $"{echo.Port}", "--streams", "100", "--bytes", "262144");
        Assert.True(result["ok"]?.GetValue<bool>() == true, result.ToJsonString());
        Assert.Equal(100, result["streams"]!.GetValue<int>());
        Assert.Equal(100 * 262144, result["bytes"]!.GetValue<long>());
        Assert.Equal(0, result["sha256Mismatches"]!.GetValue<int>());
        Assert.Equal(version, result["wispVersion"]!.GetValue<int>());
        if (version == 2)
        {
            Assert.Equal("wisp-v2", result["subprotocol"]!.GetValue<string>());
            Assert.Contains(result["serverInfo"]!["extensions"]!.AsArray(), e => e!["id"]!.GetValue<int>() == 0x04); // the MOTD
        }
    }

    [SkippableTheory]
    [InlineData(false, 0x48)] // loopback is refused by default: blocked, never dialled
    [InlineData(true, 0x44)] // allowed, but nothing listens: refused
    public async Task The_wisp_js_client_hears_why_a_stream_failed(bool allowLoopback, int reason)
    {
        using var refused = new RefusedPort();
        await using var host = await Ws2sHost.StartAsync(ForPrograms(allowLoopback ? TestConfig.Loopback : TestConfig.Defaults));
        var result = await WispClient.RunAsync("--url", WispUrl(host).ToString(), "--version", "2", "--host", "127.0.0.1",
            "--port", $"{refused.Port}", "--mode", "close-reason");
        Assert.True(result["ok"]?.GetValue<bool>() == true, result.ToJsonString());
        Assert.Equal(reason, result["closeReason"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_v2_client_gets_its_subprotocol_back_INFO_first_and_with_confirmation_a_CONTINUE_once_its_stream_is_connected()
    {
        using var echo = Peer.Echo();
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback);
        await using var client = await WsClient.ConnectAsync(WispUrl(host), "http://localhost:8080", "wisp-v2");
        Assert.Equal("wisp-v2", client.Socket.SubProtocol);
        var info = await client.ReceivePacketAsync();
        Assert.Equal((5, 0u, 2, 0), (info.Type, info.Stream, info.Payload[0], info.Payload[1]));
        Assert.Equal([0x05, 0, 0, 0, 0], info.Payload[2..]); // stream-open confirmation, no payload
        var start = await client.ReceivePacketAsync();
        Assert.Equal((3, 0u, 128u), (start.Type, start.Stream, start.Credits));
        await client.SendBinaryAsync(WispClient.Packet(5, 0, [2, 0, 0x05, 0, 0, 0, 0]));
        await client.SendBinaryAsync(WispClient.Connect(7, echo.Port, "127.0.0.1"));
        var confirmed = await client.ReceivePacketAsync();
        Assert.Equal((3, 7u, 128u), (confirmed.Type, confirmed.Stream, confirmed.Credits));
        await client.SendBinaryAsync(WispClient.Data(7, "ping"u8));
        var data = await client.ReceiveOnAsync(7, 2);
        Assert.Equal("ping", Encoding.UTF8.GetString(data.Payload));
    }

    [Fact]
    public async Task A_failed_stream_closes_alone_with_its_reason_and_the_others_go_on()
    {
        using var echo = Peer.Echo();
        using var refused = new RefusedPort();
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback);
        var (client, _) = await WispClient.OpenAsync(WispUrl(host));
        await using var _ = client;
        await client.SendBinaryAsync(WispClient.Connect(1, echo.Port, "127.0.0.1"));
        await client.SendBinaryAsync(WispClient.Connect(2, refused.Port, "127.0.0.1"));
        await client.SendBinaryAsync(WispClient.Connect(3, 80, "no such host"));
        await client.SendBinaryAsync(WispClient.Connect(4, 53, "127.0.0.1", kind: 2)); // UDP: not offered
        var reasons = new Dictionary<uint, byte>();
        while (reasons.Count < 3)
        {
            var packet = await client.ReceivePacketAsync();
            Assert.Equal(4, packet.Type);
            reasons[packet.Stream] = packet.Reason;
        }
        Assert.Equal(new Dictionary<uint, byte> { [2] = 0x44, [3] = 0x41, [4] = 0x41 }, reasons);
        await client.SendBinaryAsync(WispClient.Data(1, "still here"u8));
        Assert.Equal("still here", Encoding.UTF8.GetString((await client.ReceiveOnAsync(1, 2)).Payload));
    }

    [Theory]
    [InlineData("connect on stream 0", 1002, "wisp stream id 0 belongs to the connection, not to a stream")]
    [InlineData("short", 1002, "a wisp packet has a 5-byte header; this message has 3 bytes")]
    [InlineData("unknown type", 1002, "unknown wisp packet type 0x09")]
    [InlineData("text", 1003, "wisp carries binary messages only")]
    public async Task A_message_that_is_not_a_wisp_packet_for_a_stream_closes_the_WebSocket_with_words(string what, int status, string words)
    {
        using var echo = Peer.Echo();
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback);
        var (client, _) = await WispClient.OpenAsync(WispUrl(host));
        await using var _ = client;
        switch (what)
        {
            case "connect on stream 0": await client.SendBinaryAsync(WispClient.Connect(0, echo.Port, "127.0.0.1")); break;
            case "short": await client.SendBinaryAsync(new byte[] { 2, 1, 0 }); break;
            case "unknown type": await client.SendBinaryAsync(WispClient.Packet(9, 1, [])); break;
            default: await client.SendTextAsync("""{"command":"connect"}"""); break;
        }
        await client.ExpectCloseAsync(status, words);
    }

    /// <summary>Attack: CONNECT after CONNECT, far past what one WebSocket may hold; the server holds no more than its limit.</summary>
    [Fact]
    public async Task A_flood_of_CONNECT_past_the_stream_limit_is_refused_0x49_and_dials_nothing_more()
    {
        using var counting = new CountingPeer();
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback.With(o => o.Wisp.MaxStreams = 5));
        var (client, _) = await WispClient.OpenAsync(WispUrl(host));
        await using var _ = client;
        for (uint id = 1; id <= 50; id++) await client.SendBinaryAsync(WispClient.Connect(id, counting.Port, "127.0.0.1"));
        var refused = new List<uint>();
        while (refused.Count < 45)
        {
            var packet = await client.ReceivePacketAsync();
            Assert.Equal((4, 0x49), (packet.Type, packet.Reason));
            refused.Add(packet.Stream);
        }
        Assert.Equal(Enumerable.Range(6, 45).Select(i => (uint)i), refused);
        // The five are open and usable: one more CONNECT is still refused, a CLOSE makes room.
        await client.SendBinaryAsync(WispClient.Close(1));
        await client.SendBinaryAsync(WispClient.Connect(100, counting.Port, "127.0.0.1"));
        await client.SendBinaryAsync(WispClient.Connect(101, counting.Port, "127.0.0.1"));
        var last = await client.ReceivePacketAsync();
        Assert.Equal((4, 101u, 0x49), (last.Type, last.Stream, last.Reason));
        Assert.True(counting.Accepted <= 6, $"{counting.Accepted} connections dialled");
    }

    /// <summary>
    /// Attack: DATA far past the credits on a stream whose peer reads nothing. The stream's queue stops at twice its grant
    /// (then CLOSE 0x49), the server's memory with it; the WebSocket and its other streams go on.
    /// </summary>
    [Fact]
    public async Task DATA_past_the_credits_to_a_peer_that_reads_nothing_closes_that_stream_0x49_and_the_others_go_on()
    {
        using var silent = new CountingPeer(); // holds the connection and reads nothing: its buffers fill, writes to it stall
        using var echo = Peer.Echo();
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback.With(o => o.Wisp.BufferPackets = 4));
        var (client, credits) = await WispClient.OpenAsync(WispUrl(host));
        await using var _ = client;
        Assert.Equal(4u, credits);
        await client.SendBinaryAsync(WispClient.Connect(1, silent.Port, "127.0.0.1"));
        await client.SendBinaryAsync(WispClient.Connect(2, echo.Port, "127.0.0.1"));
        var closed = client.ReceiveOnAsync(1, 4);
        var chunk = WispClient.Data(1, new byte[60_000]);
        var sent = 0;
        // Kernel buffers take some megabytes first; then writes stall and the queue grows to its bound.
        while (!closed.IsCompleted && sent < 2_000)
        {
            await client.SendBinaryAsync(chunk);
            sent++;
        }
        var close = await closed;
        Assert.Equal(0x49, close.Reason);
        await client.SendBinaryAsync(WispClient.Data(2, "after"u8));
        Assert.Equal("after", Encoding.UTF8.GetString((await client.ReceiveOnAsync(2, 2)).Payload));
    }

    /// <summary>
    /// A stream's DATA packets and its CLOSE sent back to back (the server takes them in one turn): the packets are sent to
    /// the peer when the turn ends, and the CLOSE in the same turn must not throw away what the core already saw written.
    /// </summary>
    [Fact]
    public async Task DATA_then_CLOSE_back_to_back_leaves_every_byte_with_the_peer()
    {
        var accepted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var received = new TaskCompletionSource<(long Length, string Sha256)>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sink = Peer.Sink(received, accepted);
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback);
        using var raw = await RawWebSocket.OpenAsync(WispUrl(host));
        var hello = new byte[11]; // the first CONTINUE (v1): a 9-byte binary frame
        await new NetworkStream(raw.Tcp).ReadExactlyAsync(hello).AsTask().WaitAsync(WsClient.Patience);
        Assert.Equal(((byte)0x82, (byte)9, (byte)3), (hello[0], hello[1], hello[2]));
        await raw.Tcp.SendAsync(ClientFrame(WispClient.Connect(1, sink.Port, "127.0.0.1")).AsMemory());
        await accepted.Task.WaitAsync(WsClient.Patience);
        // In one send, so the server reads them together: 200 packets of 1,000 bytes, then the CLOSE.
        var bytes = Enumerable.Range(0, 200 * 1000).Select(i => (byte)(i * 7)).ToArray();
        byte[] wire = [.. bytes.Chunk(1000).SelectMany(chunk => ClientFrame(WispClient.Data(1, chunk))), .. ClientFrame(WispClient.Close(1))];
        await raw.Tcp.SendAsync(wire.AsMemory());
        var (length, sha) = await received.Task.WaitAsync(WsClient.Patience);
        Assert.Equal((bytes.LongLength, Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(bytes))), (length, sha));
    }

    /// <summary>A client's binary frame, masked with a zero key (the payload as it is).</summary>
    private static byte[] ClientFrame(byte[] payload) => payload.Length < 126
        ? [0x82, (byte)(0x80 | payload.Length), 0, 0, 0, 0, .. payload]
        : [0x82, 0x80 | 126, (byte)(payload.Length >> 8), (byte)payload.Length, 0, 0, 0, 0, .. payload];

    [Fact]
    public async Task Wisp_is_admitted_like_the_other_endpoints_origin_and_token_and_speaks_Wisp_once_admitted()
    {
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback.With(o =>
        {
            o.Tokens = ["wisp-secret"];
            o.Origins = ["https://app.example.com"];
        }));
        Assert.Equal(401, await HandshakeStatusAsync(WispUrl(host), "https://app.example.com"));
        Assert.Equal(403, await HandshakeStatusAsync(WispUrl(host, "?token=wisp-secret"), "https://evil.example"));
        // Admitted by ?token=, or by the token subprotocol (v1 alone, v2 beside wisp-v2): each speaks Wisp from its first packet.
        var (byQuery, _) = await WispClient.OpenAsync(WispUrl(host, "?token=wisp-secret"), "https://app.example.com");
        await byQuery.DisposeAsync();
        await using var v1 = await WsClient.ConnectAsync(WispUrl(host), "https://app.example.com", "token.wisp-secret");
        Assert.Equal("token.wisp-secret", v1.Socket.SubProtocol);
        var hello = await v1.ReceivePacketAsync();
        Assert.Equal((3, 0u), (hello.Type, hello.Stream));
        await using var v2 = await WsClient.ConnectAsync(WispUrl(host), "https://app.example.com", "wisp-v2", "token.wisp-secret");
        Assert.Equal("wisp-v2", v2.Socket.SubProtocol);
        Assert.Equal(5, (await v2.ReceivePacketAsync()).Type);
    }

    /// <summary>Attack: streams over many WebSockets from one address, past what a client may hold; the rest are refused, never dialled.</summary>
    [Fact]
    public async Task Streams_past_the_clients_peer_connections_are_refused_0x49_over_all_its_WebSockets()
    {
        using var counting = new CountingPeer();
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback.With(o => o.Limits.MaxPeerConnectionsPerClient = 3));
        await using var first = await WispClient.OpenConfirmingAsync(WispUrl(host));
        await using var second = await WispClient.OpenConfirmingAsync(WispUrl(host));
        Assert.Equal(3, (await first.ConnectAsync(1, counting.Port)).Type);
        Assert.Equal(3, (await first.ConnectAsync(2, counting.Port)).Type);
        Assert.Equal(3, (await second.ConnectAsync(1, counting.Port)).Type);
        var refused = await second.ConnectAsync(2, counting.Port);
        Assert.Equal((4, 0x49), (refused.Type, refused.Reason));
        // A ws2s session from the same address is held to the same count.
        await using var ws2s = await host.ConnectAsync();
        await ws2s.SendAsync(new { command = "connect", host = "127.0.0.1", port = counting.Port });
        var answer = await ws2s.ReceiveJsonAsync();
        Assert.Equal(2, answer["code"]!.GetValue<int>());
        Assert.Contains("has its maximum of 3 peer connections", answer["message"]!.GetValue<string>());
        // Closing a stream gives its slot back. The answer to a later packet on the same WebSocket (a CONNECT refused
        // before any dial) says the CLOSE was handled; without it the ws2s connect below could be judged first.
        await first.SendBinaryAsync(WispClient.Close(1));
        var invalid = await first.ConnectAsync(9, 0);
        Assert.Equal((4, 0x41), (invalid.Type, invalid.Reason));
        await ws2s.SendAsync(new { command = "connect", host = "127.0.0.1", port = counting.Port });
        Assert.Equal(0, (await ws2s.ReceiveJsonAsync())["code"]!.GetValue<int>());
        Assert.True(counting.Accepted <= 4, $"{counting.Accepted} connections accepted");
    }

    [Theory]
    [InlineData("wisp")]
    [InlineData("/wisp")]
    [InlineData("/a//b/")]
    public void A_wisp_path_that_cannot_be_served_is_a_configuration_error(string path)
    {
        var directory = Directory.CreateTempSubdirectory("ws2s-wisp-").FullName;
        try
        {
            var config = Path.Combine(directory, "config.json");
            File.WriteAllText(config, TestConfig.Defaults.With(o => o.Wisp.Path = path));
            var error = Assert.Throws<ConfigException>(() => Ws2sServer.Build(["--config", config]));
            Assert.Contains("wisp.path", error.Message);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task With_an_empty_wisp_path_the_path_speaks_ws2s_as_every_other_path()
    {
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback.With(o => o.Wisp.Path = ""));
        await using var client = await WsClient.ConnectAsync(WispUrl(host));
        await client.SendAsync(new { command = "ping" });
        Assert.Equal(0, (await client.ReceiveJsonAsync())["code"]!.GetValue<int>());
    }

    private static async Task<int> HandshakeStatusAsync(Uri url, string origin)
    {
        using var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        socket.Options.SetRequestHeader("Origin", origin);
        try
        {
            using var timeout = new CancellationTokenSource(WsClient.Patience);
            await socket.ConnectAsync(url, timeout.Token);
        }
        catch (WebSocketException)
        {
        }
        return (int)socket.HttpStatusCode;
    }
}
