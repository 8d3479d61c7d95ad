using System.IO.Pipelines;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Ws2s.AspNetCore.Connectors;
using Ws2s.AspNetCore.Tests;
using Ws2s.Protocol;

namespace Ws2s.Host.Tests;

/// <summary>
/// The test of the transport seam (issue 22): a connector written here, for a made-up scheme
/// <c>mem:</c> whose peers are in-memory pipes, plugs in through DI alone (no file of the runner knows
/// it) and a session relays through it, judged by the same policy as every other destination.
/// </summary>
public sealed class ConnectorSeamTests
{
    private static Task<Ws2sHost> StartAsync(params string[] allow) =>
        Ws2sHost.StartAsync(TestConfig.Defaults.With(o => o.Destinations.Allow = [.. allow]),
            services => services.TryAddEnumerable(ServiceDescriptor.Singleton<IConnector, ShoutConnector>()));

    [Fact]
    public async Task A_connector_registered_with_DI_carries_a_session_in_json_and_binary_mode()
    {
        await using var host = await StartAsync("mem:shout");
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "mem:shout" });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
        await client.SendAsync(new { command = "send", data = "hello" });
        var received = new MemoryStream();
        await client.ExpectAnswerAsync("""{"success":true,"code":0,"message":"send done"}""", received);
        await client.ReadDataAsync(received, 5);
        Assert.Equal("HELLO", Encoding.ASCII.GetString(received.ToArray()));

        await client.SendAsync(new { command = "connect", host = "mem:shout", binary = true });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
        await client.SendBinaryAsync("binary"u8.ToArray());
        Assert.Equal("BINARY", (await client.ReceiveAsync()).Text);
        // Half-close reaches the in-memory peer, which ends its side: code 5 as for any peer.
        await client.SendAsync(new { command = "shutdown" });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"shutdown done"}""");
        await client.ExpectAsync("""{"success":false,"code":5,"message":"connection closed by peer"}""");
    }

    [Fact]
    public async Task A_named_peer_not_listed_is_refused_and_a_scheme_without_a_connector_is_code_2()
    {
        await using var host = await StartAsync("mem:shout", "nowhere:x");
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "mem:other" });
        var refused = await client.ReceiveJsonAsync();
        Assert.Equal(4, (int)refused["code"]!);
        Assert.Contains("add \"mem:other\"", (string)refused["message"]!);
        await client.SendAsync(new { command = "connect", host = "nowhere:x" });
        await client.ExpectAsync("""{"success":false,"code":2,"message":"this server has no connector for nowhere: destinations"}""");
    }
}
