using System.Diagnostics;
using System.Net.Sockets;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace Ws2s.AspNetCore.Tests;

/// <summary>
/// The connection gate and the PROXY protocol in an embedding app's own listener (<c>UseWs2sGate</c>,
/// <c>UseWs2sProxyProtocol</c>): the attacks they stop, against an app that asked for them.
/// </summary>
public sealed class ListenOptionsTests
{
    private const string Request = "GET /whoami HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

    /// <summary>
    /// Attack: connections that never send a byte hold a socket each until Kestrel's keep-alive timeout (over two
    /// minutes), so a few thousand of them exhaust the process. The gate closes one silent past the handshake timeout.
    /// </summary>
    [Fact]
    public async Task A_silent_connection_is_cut_after_the_handshake_timeout_while_one_that_spoke_goes_on()
    {
        using var echo = Peer.Echo();
        await using var app = await EmbeddedApp.StartAsync(
            """{"limits":{"handshakeTimeoutSeconds":1},"allowConnectToServerLocal":true}""", listen => listen.UseWs2sGate());
        await using var session = await app.OpenAsync();
        using var silent = await app.ConnectTcpAsync();
        var clock = Stopwatch.StartNew();
        Assert.Equal("", await EmbeddedApp.ReadToEndAsync(silent)); // closed by the app, nothing said
        Assert.True(clock.Elapsed < WsClient.Patience, "the silent connection was never closed");
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(0.9), $"closed after {clock.Elapsed}, before the handshake timeout");
        // The session that made its request is no longer silent: it outlived the silent one, and works.
        await session.EchoThroughAsync(echo.Port, "still here");
    }

    /// <summary>
    /// Attack: a flood of silent connections fills the app (limits.maxConnections) so that a client that speaks cannot
    /// get in. When full, the gate closes the oldest silent connection to make room for the new one.
    /// </summary>
    [Fact]
    public async Task When_full_the_oldest_silent_connection_makes_room_for_a_new_one()
    {
        await using var app = await EmbeddedApp.StartAsync(
            """{"limits":{"maxConnections":16,"handshakeTimeoutSeconds":600}}""", listen => listen.UseWs2sGate());
        var silent = new List<Socket>();
        try
        {
            for (var i = 0; i < 16; i++) silent.Add(await app.ConnectTcpAsync());
            // The gate watches each once Kestrel runs its connection (just after the accept): only then can it be closed to make room.
            var gate = app.Services.GetRequiredService<Admission.ConnectionGate>();
            var deadline = Stopwatch.StartNew();
            while (gate.SilentCount < 16 && deadline.Elapsed < WsClient.Patience) await Task.Delay(10);
            Assert.Equal(16, gate.SilentCount);
            var answer = await app.ExchangeAsync(Request);
            Assert.StartsWith("HTTP/1.1 200 OK", answer);
            // One of them (the oldest by the gate's clock, which saw them start in its own order) made room.
            var closed = await Task.WhenAny(silent.Select(EmbeddedApp.ReadToEndAsync));
            Assert.Equal("", await closed);
        }
        finally
        {
            foreach (var socket in silent) socket.Dispose();
        }
    }

    /// <summary>Through a trusted load balancer, the PROXY header names the client: the app (and ws2s's per-client limits) see it, not the balancer.</summary>
    [Fact]
    public async Task A_proxy_header_from_a_trusted_proxy_names_the_client()
    {
        await using var app = await EmbeddedApp.StartAsync("""{"trustedProxies":["127.0.0.1"]}""", listen => listen.UseWs2sProxyProtocol());
        var answer = await app.ExchangeAsync("PROXY TCP4 203.0.113.7 127.0.0.1 40000 80\r\n" + Request);
        Assert.StartsWith("HTTP/1.1 200 OK", answer);
        Assert.EndsWith("203.0.113.7", answer);
        // Without a header (a health check) the balancer itself is the client.
        Assert.EndsWith("127.0.0.1", await app.ExchangeAsync(Request));
    }

    /// <summary>Attack: a client that is not a trusted proxy sends a PROXY header to pose as another address (and escape per-client limits).</summary>
    [Fact]
    public async Task A_proxy_header_from_an_untrusted_address_is_refused()
    {
        await using var app = await EmbeddedApp.StartAsync("""{"trustedProxies":["192.0.2.1"]}""", listen => listen.UseWs2sProxyProtocol());
        var answer = await app.ExchangeAsync("PROXY TCP4 203.0.113.7 127.0.0.1 40000 80\r\n" + Request);
        Assert.StartsWith("HTTP/1.1 400", answer);
        Assert.DoesNotContain("203.0.113.7", answer);
    }

    /// <summary>A malformed header from a trusted proxy closes the connection (logged): nothing it carries is served.</summary>
    [Fact]
    public async Task A_malformed_proxy_header_from_a_trusted_proxy_closes_the_connection()
    {
        await using var app = await EmbeddedApp.StartAsync("""{"trustedProxies":["127.0.0.1"]}""", listen => listen.UseWs2sProxyProtocol());
        Assert.Equal("", await app.ExchangeAsync("PROXY TCP4 not-an-address 127.0.0.1 40000 80\r\n" + Request));
        await app.Logs.WaitForAsync(l => l.Contains("its PROXY protocol header is malformed"));
    }

    [Fact]
    public void Without_AddWs2s_the_extensions_say_what_is_missing()
    {
        var builder = Microsoft.AspNetCore.Builder.WebApplication.CreateSlimBuilder();
        var refusals = new List<string>();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(System.Net.IPAddress.Loopback, 0, listen =>
        {
            refusals.Add(Assert.Throws<InvalidOperationException>(() => listen.UseWs2sGate()).Message);
            refusals.Add(Assert.Throws<InvalidOperationException>(() => listen.UseWs2sProxyProtocol()).Message);
        }));
        using var app = builder.Build();
        _ = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions>>().Value;
        Assert.Equal(2, refusals.Count);
        Assert.All(refusals, r => Assert.Contains("call services.AddWs2s", r));
    }
}
