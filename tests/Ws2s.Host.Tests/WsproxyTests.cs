using System.Net.WebSockets;
using System.Text;

namespace Ws2s.Host.Tests;

/// <summary>wsproxy (libcurl.js's one-WebSocket-per-connection transport): <c>/PREFIX/host:port</c>, off unless configured.</summary>
public sealed class WsproxyTests
{
    private static TestConfig Served(TestConfig config, string prefix = "/wsproxy/") => config.With(o => o.Wsproxy.Path = prefix);

    [Fact]
    public async Task Binary_frames_go_to_the_host_and_port_in_the_URL_and_back()
    {
        using var echo = Peer.Echo();
        await using var host = await Ws2sHost.StartAsync(Served(TestConfig.Loopback));
        await using var client = await WsClient.ConnectAsync(new Uri(host.Url, $"/wsproxy/127.0.0.1:{echo.Port}"));
        var payload = new byte[100_000];
        Peer.Pattern(0, payload);
        await client.SendBinaryAsync(payload);
        var received = new MemoryStream();
        while (received.Length < payload.Length) received.Write((await client.ReceiveAsync()).Bytes);
        Assert.Equal(payload, received.ToArray());
    }

    [Fact]
    public async Task The_same_prefix_serves_Wisp_at_itself_and_wsproxy_below_it_as_the_Wisp_spec_lays_out()
    {
        using var echo = Peer.Echo();
        await using var host = await Ws2sHost.StartAsync(Served(TestConfig.Loopback, "/wisp/"));
        await using (var client = await WsClient.ConnectAsync(new Uri(host.Url, $"/wisp/127.0.0.1:{echo.Port}")))
        {
            await client.SendBinaryAsync("over wsproxy"u8.ToArray());
            Assert.Equal("over wsproxy", (await client.ReceiveAsync()).Text);
        }
        var (wisp, _) = await WispClient.OpenAsync(new Uri(host.Url, "/wisp/"));
        await using var _ = wisp;
        await wisp.SendBinaryAsync(WispClient.Connect(1, echo.Port, "127.0.0.1"));
        await wisp.SendBinaryAsync(WispClient.Data(1, "over wisp"u8));
        Assert.Equal("over wisp", Encoding.UTF8.GetString((await wisp.ReceiveOnAsync(1, 2)).Payload));
    }

    /// <summary>Attack: the target in the URL is judged like any connect (this machine is refused by default).</summary>
    [Fact]
    public async Task A_target_the_policy_refuses_is_closed_1008_with_the_rule_and_never_dialled()
    {
        using var counting = new CountingPeer();
        await using var host = await Ws2sHost.StartAsync(Served(TestConfig.Defaults));
        foreach (var spelling in new[] { "127.0.0.1", "127.1", "0x7f000001", "[::ffff:127.0.0.1]", "localhost" })
        {
            await using var client = await WsClient.ConnectAsync(new Uri(host.Url, $"/wsproxy/{spelling}:{counting.Port}"), "http://localhost");
            var close = await client.ReceiveAsync();
            Assert.Equal((WebSocketMessageType.Close, 1008), (close.Type, close.CloseStatus));
            Assert.StartsWith("the target is refused by policy", close.CloseReason);
        }
        Assert.Equal(0, counting.Accepted);
    }

    [Theory]
    [InlineData("no-port")]
    [InlineData("127.0.0.1:0")]
    [InlineData("127.0.0.1:99999")]
    [InlineData("bad host:80")]
    [InlineData("unix:%2Frun%2Fdocker.sock")]
    public async Task A_URL_that_names_no_host_and_port_is_400_before_the_upgrade(string target)
    {
        await using var host = await Ws2sHost.StartAsync(Served(TestConfig.Loopback));
        using var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        socket.Options.SetRequestHeader("Origin", "http://localhost:8080");
        await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(new Uri(host.Url, "/wsproxy/" + target), CancellationToken.None));
        Assert.Equal(400, (int)socket.HttpStatusCode);
    }

    [Fact]
    public async Task Off_by_default_the_path_speaks_ws2s_like_every_other_path()
    {
        using var echo = Peer.Echo();
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback);
        await using var client = await WsClient.ConnectAsync(new Uri(host.Url, $"/wsproxy/127.0.0.1:{echo.Port}"));
        await client.SendAsync(new { command = "ping" });
        Assert.Equal(0, (await client.ReceiveJsonAsync())["code"]!.GetValue<int>());
    }
}
