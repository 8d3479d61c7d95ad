using System.Net.WebSockets;
using System.Text;

namespace Ws2s.Host.Tests;

/// <summary>
/// Wisp v2's password extension, backed by ws2s's tokens: a client that came without its token (browsers cannot set
/// headers; wisp-js and epoxy take a password) presents it in its INFO before any stream. Each way around it is an attack.
/// </summary>
public sealed class WispCredentialsTests
{
    private const string Token = "wisp-secret-4d1c";

    private static TestConfig TokensRequired => TestConfig.Loopback.With(o => o.Tokens = [Token]);

    private static async Task<WsClient> OpenV2Async(Ws2sHost host)
    {
        var client = await WsClient.ConnectAsync(new Uri(host.Url, "/wisp/"), "http://localhost:8080", "wisp-v2");
        var info = await client.ReceivePacketAsync();
        Assert.Equal(5, info.Type);
        Assert.Equal([0x02, 1, 0, 0, 0, 1], info.Payload[2..8]); // the password extension, required (after no UDP: it is off)
        return client;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_token_as_the_password_opens_the_connection_in_either_encoding(bool draft5)
    {
        using var echo = Peer.Echo();
        await using var host = await Ws2sHost.StartAsync(TokensRequired);
        await using var client = await OpenV2Async(host);
        await client.SendBinaryAsync(WispClient.PasswordInfo("anyone", Token, draft5));
        var start = await client.ReceivePacketAsync();
        Assert.Equal((3, 0u, 128u), (start.Type, start.Stream, start.Credits)); // only now
        await client.SendBinaryAsync(WispClient.Connect(1, echo.Port, "127.0.0.1"));
        await client.SendBinaryAsync(WispClient.Data(1, "let in"u8));
        Assert.Equal("let in", Encoding.UTF8.GetString((await client.ReceiveOnAsync(1, 2)).Payload));
    }

    /// <summary>Attack: no token at all, on a client that cannot present one later (v1), is refused before the upgrade.</summary>
    [Fact]
    public async Task A_v1_client_without_its_token_is_refused_401_as_on_every_endpoint()
    {
        await using var host = await Ws2sHost.StartAsync(TokensRequired);
        using var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        socket.Options.SetRequestHeader("Origin", "http://localhost:8080");
        await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(new Uri(host.Url, "/wisp/"), CancellationToken.None));
        Assert.Equal(401, (int)socket.HttpStatusCode);
    }

    /// <summary>Attacks: a wrong token, none, a stream before any; each gets its CLOSE on stream 0 and close 1008, and nothing is dialled.</summary>
    [Theory]
    [InlineData("wrong", 0xc0, "authentication failed: the token is not valid")]
    [InlineData("none", 0xc2, "authentication required: send the access token as the password (Wisp's password extension)")]
    [InlineData("stream first", 0xc2, "authentication required before anything else: an INFO with the password extension")]
    public async Task Without_the_right_token_the_connection_is_closed_and_nothing_is_dialled(string what, int reason, string words)
    {
        using var counting = new CountingPeer();
        await using var host = await Ws2sHost.StartAsync(TokensRequired);
        await using var client = await OpenV2Async(host);
        switch (what)
        {
            case "wrong": await client.SendBinaryAsync(WispClient.PasswordInfo("mallory", "guess")); break;
            case "none": await client.SendBinaryAsync(WispClient.Packet(5, 0, [2, 0])); break;
            default: await client.SendBinaryAsync(WispClient.Connect(1, counting.Port, "127.0.0.1")); break;
        }
        var closed = await client.ReceivePacketAsync();
        Assert.Equal((4, 0u, reason), (closed.Type, closed.Stream, (int)closed.Reason));
        await client.ExpectCloseAsync(1008, words);
        Assert.Equal(0, counting.Accepted);
    }

    /// <summary>Attack: a client that upgrades and then says nothing holds its slot only until the connect timeout. The clock is faked.</summary>
    [Fact]
    public async Task A_client_that_never_authenticates_is_closed_after_the_connect_timeout()
    {
        var clock = new WatchedClock();
        // A connect timeout of its own, so the timer waited for is the session's (the connection gate's handshake timer is 10 s).
        await using var host = await Ws2sHost.StartAsync(TokensRequired.With(o => o.Limits.ConnectTimeoutSeconds = 7), clock.Serves);
        var armed = clock.WhenArmedAsync(TimeSpan.FromSeconds(7));
        await using var client = await OpenV2Async(host);
        await armed;
        clock.Advance(TimeSpan.FromSeconds(7));
        var closed = await client.ReceivePacketAsync();
        Assert.Equal((4, 0u, 0xc2), (closed.Type, closed.Stream, (int)closed.Reason));
        await client.ExpectCloseAsync(1008, "authentication required: the credentials did not come within 7 s");
    }

    [SkippableFact]
    public async Task The_wisp_js_client_authenticates_with_its_password_extension()
    {
        using var echo = Peer.Echo();
        await using var host = await Ws2sHost.StartAsync(TokensRequired.With(o => o.Origins = ["*"]));
        var url = new Uri(host.Url, "/wisp/").ToString();
        var result = await WispClient.RunAsync("--url", url, "--version", "2", "--host", "127.0.0.1", "--port", $"{echo.Port}",
            "--streams", "10", "--bytes", "65536", "--username", "wisp-js", "--password", Token);
        Assert.True(result["ok"]?.GetValue<bool>() == true, result.ToJsonString());
        var refused = await WispClient.RunAsync("--url", url, "--version", "2", "--host", "127.0.0.1", "--port", $"{echo.Port}",
            "--streams", "1", "--bytes", "10", "--username", "wisp-js", "--password", "not-the-token", "--timeout-ms", "10000");
        Assert.False(refused["ok"]?.GetValue<bool>() == true, refused.ToJsonString());
    }

    /// <summary>
    /// Attack (review): clients that never present a token could hold every session slot while they wait. Those that owe one
    /// have a small share of their own (an eighth of a client's sessions here); a client with its token still gets in.
    /// </summary>
    [Fact]
    public async Task Connections_that_owe_their_token_cannot_crowd_out_those_that_present_one()
    {
        await using var host = await Ws2sHost.StartAsync(TokensRequired.With(o => o.Limits.MaxSessionsPerClient = 16));
        await using var first = await OpenV2Async(host);
        await using var second = await OpenV2Async(host);
        using var third = new ClientWebSocket();
        third.Options.CollectHttpResponseDetails = true;
        third.Options.SetRequestHeader("Origin", "http://localhost:8080");
        third.Options.AddSubProtocol("wisp-v2");
        await Assert.ThrowsAsync<WebSocketException>(() => third.ConnectAsync(new Uri(host.Url, "/wisp/"), CancellationToken.None));
        Assert.Equal(503, (int)third.HttpStatusCode);
        var (withToken, _) = await WispClient.OpenAsync(new Uri(host.Url, $"/wisp/?token={Token}"));
        await withToken.DisposeAsync();
        // One that presents its token leaves the share at once: room for another.
        await first.SendBinaryAsync(WispClient.PasswordInfo("", Token));
        Assert.Equal(3, (await first.ReceivePacketAsync()).Type);
        await using var fourth = await OpenV2Async(host);
    }
}
