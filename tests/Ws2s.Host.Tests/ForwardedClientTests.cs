using System.Buffers.Binary;
using System.Net;
using System.Text;

namespace Ws2s.Host.Tests;

/// <summary>
/// Issue 10, 6: behind a load balancer every client was one client (the proxy's address), sharing one
/// <c>maxSessionsPerClient</c> quota and one name in the logs. From <c>trustedProxies</c> a PROXY
/// header (v1 or v2) or X-Forwarded-For names the client; from anyone else such headers are ignored.
/// The client addresses in the headers are only words: nothing is sent to them.
/// </summary>
public sealed class ForwardedClientTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("ws2s-forwarded-").FullName;

    public void Dispose() => Directory.Delete(_home, recursive: true);

    private async Task<(ServerProcess Server, Uri Url)> StartAsync(string trustedProxies)
    {
        var config = Path.Combine(_home, "config.json");
        await File.WriteAllTextAsync(config,
            TestConfig.Defaults.With(o =>
            {
                o.TrustedProxies = trustedProxies == "" ? [] : [trustedProxies];
                o.Limits.MaxSessionsPerClient = 1;
            }));
        var server = ServerProcess.Start(["--config", config], home: _home);
        return (server, await server.ListeningUrlAsync());
    }

    /// <summary>A PROXY protocol header naming <paramref name="client"/> as the source of a TCP connection to 127.0.0.1:3613.</summary>
    private static byte[] ProxyHeader(int version, IPEndPoint client)
    {
        if (version == 1) return Encoding.ASCII.GetBytes($"PROXY TCP4 {client.Address} 127.0.0.1 {client.Port} 3613\r\n");
        var header = new byte[16 + 12];
        "\r\n\r\n\0\r\nQUIT\n"u8.CopyTo(header);
        header[12] = 0x21; // version 2, PROXY
        header[13] = 0x11; // TCP over IPv4
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(14), 12);
        client.Address.GetAddressBytes().CopyTo(header, 16);
        IPAddress.Loopback.GetAddressBytes().CopyTo(header, 20);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(24), (ushort)client.Port);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(26), 3613);
        return header;
    }

    private static readonly IPEndPoint Alice = new(IPAddress.Parse("203.0.113.7"), 40001), Bob = new(IPAddress.Parse("203.0.113.8"), 40002);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task A_PROXY_header_from_a_trusted_proxy_names_the_client_for_limits_and_logs(int version)
    {
        var (server, url) = await StartAsync("127.0.0.1");
        await using var _ = server;
        using var alice = await RawWebSocket.OpenAsync(url, prefix: ProxyHeader(version, Alice));
        using var bob = await RawWebSocket.OpenAsync(url, prefix: ProxyHeader(version, Bob));
        using var aliceAgain = await RawWebSocket.OpenAsync(url, prefix: ProxyHeader(version, Alice));
        Assert.StartsWith("HTTP/1.1 101", alice.Status);
        Assert.StartsWith("HTTP/1.1 101", bob.Status); // her own quota, not the proxy's
        Assert.StartsWith("HTTP/1.1 503", aliceAgain.Status); // one session per client

        await alice.Socket!.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, "", CancellationToken.None);
        await server.WaitForLineAsync(line => line.Contains("session from 203.0.113.7:40001 / ended"));
    }

    [Fact]
    public async Task X_Forwarded_For_from_a_trusted_proxy_names_the_client()
    {
        var (server, url) = await StartAsync("127.0.0.0/8");
        await using var _ = server;
        using var alice = await RawWebSocket.OpenAsync(url, headers: "X-Forwarded-For: 203.0.113.7\r\n");
        using var bob = await RawWebSocket.OpenAsync(url, headers: "X-Forwarded-For: 198.51.100.1, 203.0.113.8\r\n");
        using var aliceAgain = await RawWebSocket.OpenAsync(url, headers: "X-Forwarded-For: 203.0.113.7\r\n");
        Assert.StartsWith("HTTP/1.1 101", alice.Status);
        Assert.StartsWith("HTTP/1.1 101", bob.Status);
        Assert.StartsWith("HTTP/1.1 503", aliceAgain.Status);
    }

    [Theory]
    [InlineData("")]
    [InlineData("127.0.0.2")]
    public async Task Headers_from_an_address_that_is_not_a_trusted_proxy_change_nothing(string trustedProxies)
    {
        var (server, url) = await StartAsync(trustedProxies);
        await using var _ = server;
        // A client that claims to be someone else to escape its one-session quota…
        using var first = await RawWebSocket.OpenAsync(url, headers: "X-Forwarded-For: 203.0.113.7\r\n");
        using var second = await RawWebSocket.OpenAsync(url, headers: "X-Forwarded-For: 203.0.113.8\r\n");
        using var proxied = await RawWebSocket.OpenAsync(url, prefix: ProxyHeader(2, Bob));
        Assert.StartsWith("HTTP/1.1 101", first.Status);
        Assert.StartsWith("HTTP/1.1 503", second.Status);
        Assert.DoesNotContain("101", proxied.Status); // a PROXY header is not HTTP: refused or closed
        // …while a trusted proxy (127.0.0.2, when configured) does speak for its clients.
        if (trustedProxies != "")
        {
            using var viaProxy = await RawWebSocket.OpenAsync(url, source: IPAddress.Parse("127.0.0.2"), headers: "X-Forwarded-For: 203.0.113.8\r\n");
            Assert.StartsWith("HTTP/1.1 101", viaProxy.Status);
        }
    }
}
