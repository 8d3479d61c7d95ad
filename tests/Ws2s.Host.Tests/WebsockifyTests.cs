using System.Net.WebSockets;

namespace Ws2s.Host.Tests;

/// <summary>The websockify endpoint: binary frames straight to a named target.</summary>
public sealed class WebsockifyTests
{
    /// <summary>A server whose websockify endpoint has one target, <paramref name="name"/> at 127.0.0.1:<paramref name="port"/>.</summary>
    private static TestConfig Config(string name, int port, bool allowServerLocal = true) => TestConfig.Defaults.With(o =>
    {
        o.AllowConnectToServerLocal = allowServerLocal;
        o.RawTargets = new() { [name] = $"127.0.0.1:{port}" };
    });

    [Fact]
    public async Task Binary_frames_go_to_the_named_target_and_its_bytes_come_back_as_binary_frames()
    {
        using var echo = Peer.Echo();
        await using var host = await Ws2sHost.StartAsync(Config("echo", echo.Port));
        await using var client = await WsClient.ConnectAsync(new Uri(host.Url, "/websockify?token=echo"), "http://localhost", "binary");
        Assert.Equal("binary", client.Socket.SubProtocol);

        var payload = new byte[200_000];
        Peer.Pattern(0, payload);
        await client.SendBinaryAsync(payload);
        var received = new MemoryStream();
        while (received.Length < payload.Length)
        {
            var message = await client.ReceiveAsync();
            Assert.Equal(WebSocketMessageType.Binary, message.Type);
            received.Write(message.Bytes);
        }
        Assert.Equal(payload, received.ToArray());
    }

    [Fact]
    public async Task A_text_frame_closes_the_session_with_1003()
    {
        using var echo = Peer.Echo();
        await using var host = await Ws2sHost.StartAsync(Config("echo", echo.Port));
        await using var client = await WsClient.ConnectAsync(new Uri(host.Url, "/websockify/any/path?token=echo"));
        await client.SendTextAsync("""{"command":"ping"}""");
        var close = await client.ReceiveAsync();
        Assert.Equal(WebSocketMessageType.Close, close.Type);
        Assert.Equal(1003, close.CloseStatus);
    }

    [Fact]
    public async Task An_unknown_token_is_404_before_the_upgrade()
    {
        await using var host = await Ws2sHost.StartAsync(Config("vnc", 5901));
        using var http = new HttpClient();
        var response = await http.GetAsync(new UriBuilder(new Uri(host.Url, "/websockify?token=nope")) { Scheme = "http" }.Uri);
        Assert.Equal(426, (int)response.StatusCode); // not even a WebSocket request
        using var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        socket.Options.SetRequestHeader("Origin", "http://localhost");
        await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(new Uri(host.Url, "/websockify?token=nope"), CancellationToken.None));
        Assert.Equal(404, (int)socket.HttpStatusCode);
    }

    [Fact]
    public async Task The_peer_closing_closes_the_session_with_1000_after_its_last_byte()
    {
        using var greeter = Peer.Greeter();
        await using var host = await Ws2sHost.StartAsync(Config("hello", greeter.Port));
        await using var client = await WsClient.ConnectAsync(new Uri(host.Url, "/websockify?token=hello"));
        var received = new MemoryStream();
        Message message;
        while ((message = await client.ReceiveAsync()).Type == WebSocketMessageType.Binary) received.Write(message.Bytes);
        Assert.Equal("hello from peer\n"u8.ToArray(), received.ToArray());
        Assert.Equal(1000, message.CloseStatus);
    }

    [Fact]
    public async Task An_unreachable_or_forbidden_target_closes_with_a_reason()
    {
        using var refused = new RefusedPort();
        await using (var host = await Ws2sHost.StartAsync(Config("down", refused.Port))) 
        {
            await using var client = await WsClient.ConnectAsync(new Uri(host.Url, "/websockify?token=down"));
            var close = await client.ReceiveAsync();
            Assert.Equal(1011, close.CloseStatus);
            Assert.Contains("connection refused", close.CloseReason);
        }
        await using (var strict = await Ws2sHost.StartAsync(Config("local", 5901, allowServerLocal: false)))
        {
            await using var client = await WsClient.ConnectAsync(new Uri(strict.Url, "/websockify?token=local"));
            var close = await client.ReceiveAsync();
            Assert.Equal(1008, close.CloseStatus);
            Assert.Contains("loopback 127.0.0.0/8", close.CloseReason);
        }
    }

    [Fact]
    public async Task The_token_file_is_re_read_when_it_changes()
    {
        using var first = Peer.Greeter();
        using var second = Peer.Echo();
        var directory = Directory.CreateTempSubdirectory("ws2s-tokens-").FullName;
        var file = Path.Combine(directory, "targets");
        await File.WriteAllTextAsync(file, $"# websockify format\nvnc: 127.0.0.1:{first.Port}\n");
        try
        {
            await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback.With(o => o.RawTokenFile = file));
            await using (var client = await WsClient.ConnectAsync(new Uri(host.Url, "/websockify?token=vnc")))
                Assert.Equal("hello from peer\n"u8.ToArray(), (await client.ReceiveAsync()).Bytes);

            await File.WriteAllTextAsync(file, $"vnc: 127.0.0.1:{second.Port}  # moved\nother: 127.0.0.1:{first.Port}\n");
            File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddSeconds(5)); // a distinct stamp even on coarse clocks
            await using var moved = await WsClient.ConnectAsync(new Uri(host.Url, "/websockify?token=vnc"));
            await moved.SendBinaryAsync("ping"u8.ToArray());
            Assert.Equal("ping"u8.ToArray(), (await moved.ReceiveAsync()).Bytes);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
