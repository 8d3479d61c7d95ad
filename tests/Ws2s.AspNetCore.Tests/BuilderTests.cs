using System.IO.Pipelines;
using System.Text;
using Ws2s.AspNetCore.Connectors;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Tests;

/// <summary>ws2s's pluggable parts, added through the builder <c>AddWs2s</c> returns, by public API only.</summary>
public sealed class BuilderTests
{
    [Fact]
    public async Task A_connector_added_through_the_builder_carries_sessions_to_its_peers()
    {
        await using var app = await EmbeddedApp.StartAsync("""{"destinations":{"allow":["mem:shout"]}}""", parts: ws2s => ws2s.AddConnector<ShoutConnector>());
        await using var client = await app.OpenAsync();
        await client.SendAsync(new { command = "connect", host = "mem:shout", binary = true });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
        await client.SendBinaryAsync("hello"u8.ToArray());
        Assert.Equal("HELLO", (await client.ReceiveAsync()).Text);
    }

    [Fact]
    public async Task Without_the_connector_its_peers_are_not_reached()
    {
        await using var app = await EmbeddedApp.StartAsync("""{"destinations":{"allow":["mem:shout"]}}""");
        await using var client = await app.OpenAsync();
        await client.SendAsync(new { command = "connect", host = "mem:shout" });
        await client.ExpectAsync("""{"success":false,"code":2,"message":"this server has no connector for mem: destinations"}""");
    }

    /// <summary>An app-wide scope narrows every session to what the app says its request may reach, within the server's policy.</summary>
    [Fact]
    public async Task A_destination_scope_narrows_every_session_and_never_widens_the_policy()
    {
        using var inScope = Peer.Echo();
        using var outOfScope = Peer.Echo();
        using var notAllowed = Peer.Echo();
        await using var app = await EmbeddedApp.StartAsync(
            $$$"""{"allowConnectToServerLocal":true,"destinations":{"allow":["127.0.0.1:{{{inScope.Port}}}","127.0.0.1:{{{outOfScope.Port}}}"]}}""",
            parts: ws2s => ws2s.AddDestinationScope(_ => [$"127.0.0.1:{inScope.Port}", $"127.0.0.1:{notAllowed.Port}"]));
        await using var client = await app.OpenAsync();
        await client.EchoThroughAsync(inScope.Port, "in scope");
        foreach (var port in new[] { outOfScope.Port, notAllowed.Port })
        {
            await client.SendAsync(new { command = "connect", host = "127.0.0.1", port });
            Assert.Equal(4, (int)(await client.ReceiveJsonAsync())["code"]!);
        }
    }

    [Fact]
    public async Task A_scope_with_a_bad_rule_refuses_the_session_and_says_so_in_the_log()
    {
        await using var app = await EmbeddedApp.StartAsync("""{}""", parts: ws2s => ws2s.AddDestinationScope(_ => ["10.0.0.0/33"]));
        var refused = await Assert.ThrowsAsync<System.Net.WebSockets.WebSocketException>(app.OpenAsync);
        Assert.Contains("500", refused.Message);
        await app.Logs.WaitForAsync(l => l.Contains("destination scope") && l.Contains("bad rule"));
    }
}
