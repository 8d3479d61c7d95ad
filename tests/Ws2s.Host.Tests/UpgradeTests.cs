using Microsoft.Extensions.DependencyInjection;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;

namespace Ws2s.Host.Tests;

/// <summary>Attacks (issue 10, 9): handshakes the server must not accept, subprotocols it must not echo, messages that never end.</summary>
public sealed class UpgradeTests
{
    /// <summary>Sends a raw request and returns the response head (status line and headers).</summary>
    private static async Task<string> RawAsync(Uri url, string request)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(url.Host, url.Port);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        var head = new StringBuilder();
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(WsClient.Patience);
        while (!head.ToString().Contains("\r\n\r\n"))
        {
            var read = await stream.ReadAsync(buffer, timeout.Token);
            if (read == 0) break;
            head.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }
        return head.ToString();
    }

    private static string Handshake(string requestLine, string version = "13", string? protocols = null, string path = "/") =>
        $"{requestLine.Replace("PATH", path)}\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nOrigin: http://localhost:8080\r\n" +
        $"Sec-WebSocket-Version: {version}\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
        (protocols is null ? "" : $"Sec-WebSocket-Protocol: {protocols}\r\n") + "\r\n";

    [Theory]
    [InlineData("GET PATH HTTP/1.0", "13")]
    [InlineData("get PATH HTTP/1.1", "13")]
    [InlineData("Get PATH HTTP/1.1", "13")]
    [InlineData("GET PATH HTTP/1.1", "13, 8")]
    [InlineData("GET PATH HTTP/1.1", "8")]
    [InlineData("GET PATH HTTP/1.1", "013")]
    public async Task Only_an_HTTP_1_1_GET_with_version_13_exactly_is_upgraded(string requestLine, string version)
    {
        await using var host = await Ws2sHost.StartAsync();
        var response = await RawAsync(host.Url, Handshake(requestLine, version));
        Assert.StartsWith("HTTP/1.1 426", response);
        Assert.Contains("Sec-WebSocket-Version: 13", response);
        // The well-formed handshake next to it is upgraded (the test can fail).
        Assert.StartsWith("HTTP/1.1 101", await RawAsync(host.Url, Handshake("GET PATH HTTP/1.1")));
    }

    [Theory]
    [InlineData("/", "chat", null)]
    [InlineData("/", "chat, ws2s", "ws2s")]
    [InlineData("/", "binary", null)]
    [InlineData("/websockify?token=vnc", "binary, base64", "binary")]
    [InlineData("/websockify?token=vnc", "chat", null)]
    public async Task The_server_never_echoes_a_subprotocol_it_does_not_speak(string path, string offered, string? chosen)
    {
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback.With(o => o.RawTargets = new() { ["vnc"] = "127.0.0.1:9" }));
        var response = await RawAsync(host.Url, Handshake("GET PATH HTTP/1.1", protocols: offered, path: path));
        Assert.StartsWith("HTTP/1.1 101", response);
        if (chosen is null) Assert.DoesNotContain("Sec-WebSocket-Protocol", response);
        else Assert.Contains($"Sec-WebSocket-Protocol: {chosen}\r\n", response);
    }

    [Fact]
    public async Task Websockify_refuses_a_client_that_offers_only_base64_with_400()
    {
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback.With(o => o.RawTargets = new() { ["vnc"] = "127.0.0.1:9" }));
        var response = await RawAsync(host.Url, Handshake("GET PATH HTTP/1.1", protocols: "base64", path: "/websockify?token=vnc"));
        Assert.StartsWith("HTTP/1.1 400", response);
    }

    [Fact]
    public async Task An_oversized_message_is_closed_with_1009_before_the_client_has_sent_all_of_it()
    {
        await using var host = await Ws2sHost.StartAsync(TestConfig.Defaults.With(o => o.Limits.MaxMessageBytes = 65536));
        await using var client = await WsClient.ConnectAsync(host.Url);
        // 96 KiB of a message that would go on forever: the server must not wait for its end.
        var chunk = new byte[32 * 1024];
        for (var i = 0; i < 3; i++)
            await client.Socket.SendAsync(chunk, WebSocketMessageType.Binary, endOfMessage: false, CancellationToken.None);
        await client.ExpectCloseAsync(1009, "message exceeds 65536 bytes");
    }

    /// <summary>The clock is faked: the half message's stall deadline is armed, then passes.</summary>
    [Fact]
    public async Task A_message_begun_and_never_finished_is_closed_by_the_message_timeout()
    {
        var clock = new WatchedClock();
        await using var host = await Ws2sHost.StartAsync(TestConfig.Defaults.With(o => o.Limits.MessageTimeoutSeconds = 7),
            clock.Serves);
        await using var client = await WsClient.ConnectAsync(host.Url);
        var armed = clock.WhenArmedAsync(TimeSpan.FromSeconds(7));
        await client.Socket.SendAsync(Encoding.UTF8.GetBytes("""{"command":"pi"""), WebSocketMessageType.Text, endOfMessage: false, CancellationToken.None);
        await armed;
        clock.Advance(TimeSpan.FromSeconds(7));
        await client.ExpectCloseAsync(1008, "message stalled: no bytes of it for 7 s");
    }

    [Fact]
    public async Task A_slow_but_finished_message_is_not_closed_and_the_session_stays_usable()
    {
        await using var host = await Ws2sHost.StartAsync(TestConfig.Defaults.With(o => o.Limits.MessageTimeoutSeconds = 5));
        await using var client = await WsClient.ConnectAsync(host.Url);
        await client.Socket.SendAsync(Encoding.UTF8.GetBytes("""{"command":"""), WebSocketMessageType.Text, endOfMessage: false, CancellationToken.None);
        await client.Socket.SendAsync(Encoding.UTF8.GetBytes("\"ping\"}"), WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
        await client.ExpectAsync("""{"success":true,"code":0,"message":"ping done"}""");
    }

    [Fact]
    public async Task A_message_that_keeps_coming_is_never_cut_however_long_it_takes()
    {
        // A slow upload: the timeout is 3 s, the message takes about 4 s, a piece every second (the
        // pauses are the client's pace, the behaviour under test, with 2 s to spare per piece).
        await using var host = await Ws2sHost.StartAsync(TestConfig.Defaults.With(o => o.Limits.MessageTimeoutSeconds = 3));
        await using var client = await WsClient.ConnectAsync(host.Url);
        foreach (var piece in new[] { "{\"comm", "and\":", "\"pi", "ng\"" })
        {
            await client.Socket.SendAsync(Encoding.UTF8.GetBytes(piece), WebSocketMessageType.Text, endOfMessage: false, CancellationToken.None);
            await Task.Delay(TimeSpan.FromSeconds(1));
        }
        await client.Socket.SendAsync(Encoding.UTF8.GetBytes("}"), WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
        await client.ExpectAsync("""{"success":true,"code":0,"message":"ping done"}""");
    }

    /// <summary>
    /// Attack (issue 20, 8): one frame announcing 100 MiB, of which 1.1 or 1.5 MiB arrive (the limit is 1 MiB):
    /// no close came until about 2 MiB had arrived. The close (1009) comes once more than the limit is in.
    /// </summary>
    [Theory]
    [InlineData(1.1)]
    [InlineData(1.5)]
    public async Task A_frame_announcing_100_MiB_is_closed_with_1009_once_more_than_the_limit_has_arrived(double mebibytes)
    {
        await using var host = await Ws2sHost.StartAsync(TestConfig.Defaults);
        using var raw = await RawWebSocket.OpenAsync(host.Url);
        Assert.StartsWith("HTTP/1.1 101", raw.Status);
        var header = new byte[2 + 8 + 4];
        header[0] = 0x82; // FIN, binary
        header[1] = 0x80 | 127; // masked, 64-bit length
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(header.AsSpan(2), 100UL << 20);
        // Mask 0: the payload goes as it is.
        using var stream = new NetworkStream(raw.Tcp, ownsSocket: false);
        await stream.WriteAsync(header);
        await stream.WriteAsync(new byte[(int)(mebibytes * (1 << 20))]);
        var buffer = new byte[256];
        using var patience = new CancellationTokenSource(WsClient.Patience);
        var close = await raw.Socket!.ReceiveAsync(buffer, patience.Token);
        Assert.Equal(WebSocketMessageType.Close, close.MessageType);
        Assert.Equal((WebSocketCloseStatus)1009, raw.Socket.CloseStatus);
        Assert.Equal("message exceeds 1048576 bytes", raw.Socket.CloseStatusDescription);
    }
}
