using Microsoft.Extensions.DependencyInjection;
using System.Net;
using System.Net.WebSockets;

namespace Ws2s.Host.Tests;

/// <summary>Who may open a session (origins, tokens, limits), and what the server's own policy refuses, live.</summary>
public sealed class AdmissionTests
{
    /// <summary>Attempts a handshake and returns the HTTP status the server refused it with (101 if it upgraded).</summary>
    private static async Task<int> HandshakeStatusAsync(Uri url, string? origin, params string[] subProtocols)
    {
        using var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        if (origin is not null) socket.Options.SetRequestHeader("Origin", origin);
        foreach (var p in subProtocols) socket.Options.AddSubProtocol(p);
        try
        {
            using var timeout = new CancellationTokenSource(WsClient.Patience);
            await socket.ConnectAsync(url, timeout.Token);
            return (int)socket.HttpStatusCode;
        }
        catch (WebSocketException)
        {
            return (int)socket.HttpStatusCode;
        }
    }

    [Theory]
    [InlineData("http://localhost:5173", 101)]
    [InlineData("https://127.0.0.1", 101)]
    [InlineData("http://[::1]:8080", 101)]
    [InlineData("https://evil.example", 403)]
    [InlineData("http://localhost.evil.example", 403)]
    [InlineData("null", 403)]
    [InlineData(null, 403)]
    public async Task By_default_only_local_pages_may_open_a_session(string? origin, int status)
    {
        await using var host = await Ws2sHost.StartAsync();
        Assert.Equal(status, await HandshakeStatusAsync(host.Url, origin));
    }

    [Fact]
    public async Task A_refused_origin_gets_403_with_a_body_that_says_why()
    {
        await using var host = await Ws2sHost.StartAsync();
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, new UriBuilder(host.Url) { Scheme = "http" }.Uri);
        request.Headers.Add("Connection", "Upgrade");
        request.Headers.Add("Upgrade", "websocket");
        request.Headers.Add("Sec-WebSocket-Version", "13");
        request.Headers.Add("Sec-WebSocket-Key", Convert.ToBase64String(new byte[16]));
        request.Headers.Add("Origin", "https://evil.example");
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("origin https://evil.example is not allowed", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Configured_origins_are_matched_exactly_and_a_star_admits_any_client()
    {
        await using (var host = await Ws2sHost.StartAsync(
            TestConfig.Loopback.With(o => o.Origins = ["https://app.example.com", "http://dev.example.com:*"])))
        {
            Assert.Equal(101, await HandshakeStatusAsync(host.Url, "https://app.example.com"));
            Assert.Equal(101, await HandshakeStatusAsync(host.Url, "https://APP.example.com:443"));
            Assert.Equal(101, await HandshakeStatusAsync(host.Url, "http://dev.example.com:3000"));
            Assert.Equal(403, await HandshakeStatusAsync(host.Url, "https://app.example.com:8443"));
            Assert.Equal(403, await HandshakeStatusAsync(host.Url, "http://app.example.com"));
            Assert.Equal(403, await HandshakeStatusAsync(host.Url, "https://evil-app.example.com"));
            Assert.Equal(403, await HandshakeStatusAsync(host.Url, "http://localhost:8080"));
        }
        await using (var open = await Ws2sHost.StartAsync(TestConfig.Loopback.With(o => o.Origins = ["*"])))
        {
            Assert.Equal(101, await HandshakeStatusAsync(open.Url, null));
            Assert.Equal(101, await HandshakeStatusAsync(open.Url, "https://anything.example"));
        }
    }

    [Fact]
    public async Task With_tokens_every_session_must_present_one_in_the_query_or_a_subprotocol()
    {
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback.With(o => o.Tokens = ["first-token", "second-token"]));
        Assert.Equal(401, await HandshakeStatusAsync(host.Url, "http://localhost"));
        Assert.Equal(401, await HandshakeStatusAsync(new Uri(host.Url, "/?token=wrong"), "http://localhost"));
        Assert.Equal(401, await HandshakeStatusAsync(host.Url, "http://localhost", "token.first-token-but-longer"));
        Assert.Equal(101, await HandshakeStatusAsync(new Uri(host.Url, "/?token=second-token"), "http://localhost"));
        // A token admits a client without an Origin header (a non-browser client)…
        Assert.Equal(101, await HandshakeStatusAsync(new Uri(host.Url, "/?token=first-token"), null));
        // …but never a page from a refused origin.
        Assert.Equal(403, await HandshakeStatusAsync(new Uri(host.Url, "/?token=first-token"), "https://evil.example"));

        // Browsers carry it as a subprotocol; the server must echo one offered subprotocol back.
        await using var client = await WsClient.ConnectAsync(host.Url, "http://localhost", "ws2s", "token.first-token");
        Assert.Equal("ws2s", client.Socket.SubProtocol);
        await client.SendAsync(new { command = "ping" });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"ping done"}""");
    }

    [Fact]
    public async Task Sessions_beyond_the_per_client_limit_get_503_until_one_ends()
    {
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback.With(o => o.Limits.MaxSessionsPerClient = 2));
        var first = await host.ConnectAsync();
        await using var second = await host.ConnectAsync();
        Assert.Equal(503, await HandshakeStatusAsync(host.Url, "http://localhost"));

        await first.DisposeAsync();
        // The slot frees once the server has finished the first session: wait for that, with a deadline.
        var deadline = DateTime.UtcNow + WsClient.Patience;
        int status;
        do status = await HandshakeStatusAsync(host.Url, "http://localhost");
        while (status == 503 && DateTime.UtcNow < deadline);
        Assert.Equal(101, status);
    }

    /// <summary>The clock is faked: the session is closed when it has been idle for the timeout, counted from its last frame.</summary>
    [Fact]
    public async Task An_idle_session_is_closed_with_1000_and_a_reason()
    {
        var clock = new WatchedClock();
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback.With(o => o.Limits.IdleTimeoutSeconds = 60),
            clock.Serves);
        var started = clock.WhenArmedAsync(TimeSpan.FromSeconds(60));
        await using var client = await host.ConnectAsync();
        await started;
        // A frame a second before the timeout restarts the count: the wake-up at 60 s finds nothing due and waits 59 s more.
        clock.Advance(TimeSpan.FromSeconds(59));
        await client.SendAsync(new { command = "ping" });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"ping done"}""");
        var rearmed = clock.WhenArmedAsync(TimeSpan.FromSeconds(59));
        clock.Advance(TimeSpan.FromSeconds(1));
        await rearmed;
        clock.Advance(TimeSpan.FromSeconds(59));
        await client.ExpectCloseAsync(1000, "idle timeout: no traffic for 60 s");
    }

    /// <summary>
    /// Found in review: a reload that shortens the idle timeout reached an idle open session only at the deadline it had
    /// armed under the old settings (up to an hour later), since an idle session gets no input to take the reload up with.
    /// The clock is faked: once the reload is taken, five seconds of silence close the session.
    /// </summary>
    [Fact]
    public async Task A_reload_that_shortens_the_idle_timeout_reaches_idle_open_sessions()
    {
        var clock = new WatchedClock();
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback, clock.Serves);
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "ping" });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"ping done"}""");
        var rearmed = clock.WhenArmedAsync(TimeSpan.FromSeconds(5));
        var next = new Ws2s.AspNetCore.Configuration.Ws2sOptions { AllowConnectToServerLocal = true };
        next.Limits.IdleTimeoutSeconds = 5;
        Assert.Empty(host.Services.GetRequiredService<Ws2s.AspNetCore.Configuration.LiveConfiguration>().Take(next).Problems);
        await rearmed;
        clock.Advance(TimeSpan.FromSeconds(5));
        await client.ExpectCloseAsync(1000, "idle timeout: no traffic for 5 s");
    }

    [Fact]
    public async Task The_server_refuses_to_dial_itself_even_with_loopback_allowed()
    {
        await using var host = await Ws2sHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = host.Url.Port });
        await client.ExpectAsync($$"""{"success":false,"code":4,"message":"ws2s refuse to connect target host: 127.0.0.1, cause that's a dangerous operation (the ws2s server itself)"}""");
    }

    [Fact]
    public async Task A_deny_rule_refuses_its_destination_and_names_itself()
    {
        using var echo = Peer.Echo();
        using var other = Peer.Echo();
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback.With(o => o.Destinations.Deny = [$"127.0.0.1:{echo.Port}"]));
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "localhost", port = echo.Port });
        await client.ExpectAsync($$"""{"success":false,"code":4,"message":"ws2s refuse to connect target host: localhost, cause that's a dangerous operation (deny rule 127.0.0.1:{{echo.Port}})"}""");
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = other.Port });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
    }

    [Fact]
    public async Task Connects_beyond_the_rate_limit_get_code_2()
    {
        using var echo = Peer.Echo();
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback.With(o => o.Limits.MaxConnectsPerSecond = 2));
        await using var client = await host.ConnectAsync();
        for (var i = 0; i < 5; i++) await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = echo.Port });
        var messages = new List<string>();
        for (var i = 0; i < 5; i++) messages.Add((string)(await client.ReceiveJsonAsync())["message"]!);
        // Within one second at most two connects start; whether the clock ticks mid-burst is up to the clock.
        Assert.Contains("too many connects: at most 2 per second", messages);
        Assert.True(messages.Count(m => m == "connect done") >= 2);
    }

    /// <summary>
    /// Attack (issue 20, 5): listening on 127.0.0.1 and on <c>[::]</c>, 127.0.0.5 opened 6 sessions with
    /// <c>maxSessionsPerClient: 3</c>: counted once as 127.0.0.5 and once as ::ffff:127.0.0.5. A client is
    /// one client whichever listener it reached.
    /// </summary>
    [Fact]
    public async Task A_client_is_one_client_on_an_ipv4_and_a_dual_stack_listener()
    {
        await using var host = await Ws2sHost.StartAsync(TestConfig.Defaults
            .Serving(s => s.Endpoints = [new() { Host = "::", Port = 0 }])
            .With(o => o.Limits.MaxSessionsPerClient = 3));
        var ports = host.Urls.Select(u => u.Port).Distinct().ToList();
        Assert.Equal(2, ports.Count);
        var client = IPAddress.Parse("127.0.0.5");
        var sockets = new List<RawWebSocket>();
        try
        {
            foreach (var port in new[] { ports[0], ports[0], ports[0], ports[1], ports[1], ports[1] })
                sockets.Add(await RawWebSocket.OpenAsync(new Uri($"ws://127.0.0.1:{port}/"), client));
            Assert.Equal(3, sockets.Count(s => s.Status.StartsWith("HTTP/1.1 101", StringComparison.Ordinal)));
            Assert.Equal(3, sockets.Count(s => s.Status.StartsWith("HTTP/1.1 503", StringComparison.Ordinal)));
        }
        finally
        {
            foreach (var socket in sockets) socket.Dispose();
        }
    }
}
