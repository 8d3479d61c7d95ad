using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;

namespace Ws2s.Host.Tests;

/// <summary>A UDP echo on 127.0.0.1: every datagram straight back (counting them), until disposed.</summary>
public sealed class UdpEcho : IDisposable
{
    private readonly UdpClient _socket = new(new IPEndPoint(IPAddress.Loopback, 0));
    private readonly CancellationTokenSource _stop = new();
    private int _received;

    public UdpEcho() => _ = EchoAsync();

    public int Port => ((IPEndPoint)_socket.Client.LocalEndPoint!).Port;

    /// <summary>Datagrams that reached the peer.</summary>
    public int Received => Volatile.Read(ref _received);

    private async Task EchoAsync()
    {
        try
        {
            while (true)
            {
                var datagram = await _socket.ReceiveAsync(_stop.Token);
                Interlocked.Increment(ref _received);
                await _socket.SendAsync(datagram.Buffer, datagram.RemoteEndPoint, _stop.Token);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _socket.Dispose();
    }
}

/// <summary>Datagrams: ws2s's <c>"udp": true</c> and Wisp's UDP streams, off by default, judged by the policy and <c>udp.allow</c>, rate-limited per client.</summary>
public sealed class UdpTests
{
    private static TestConfig UdpOn(TestConfig config, params string[] allow) => config.With(o =>
    {
        o.Udp.Enabled = true;
        o.Udp.Allow = [.. allow];
    });

    [Fact]
    public async Task Each_binary_frame_is_one_datagram_and_each_datagram_comes_back_as_one_frame()
    {
        using var echo = new UdpEcho();
        await using var host = await Ws2sHost.StartAsync(UdpOn(TestConfig.Loopback));
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = echo.Port, udp = true, binary = true });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
        foreach (var size in (int[])[1, 1000, 60_000])
        {
            var datagram = new byte[size];
            Peer.Pattern(size, datagram);
            await client.SendBinaryAsync(datagram);
            var back = await client.ReceiveAsync();
            Assert.Equal(WebSocketMessageType.Binary, back.Type);
            Assert.Equal(datagram, back.Bytes); // whole: never split, never merged
        }
        // A sendb is one datagram too.
        await client.SendAsync(new { command = "sendb", data = Convert.ToBase64String("ping"u8) });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"sendb done"}""");
        var pong = await client.ReceiveAsync();
        Assert.Equal("ping"u8.ToArray(), pong.Bytes);
    }

    /// <summary>Attack: a page sending datagrams where the operator did not open UDP (off by default).</summary>
    [Fact]
    public async Task UDP_is_refused_unless_enabled_and_never_sent()
    {
        using var echo = new UdpEcho();
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback);
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = echo.Port, udp = true });
        var answer = await client.ReceiveJsonAsync();
        Assert.Equal(4, answer["code"]!.GetValue<int>());
        Assert.Contains("UDP is off on this server (udp.enabled)", answer["message"]!.GetValue<string>());
        Assert.Equal(0, echo.Received);
    }

    /// <summary>Attack: udp.allow listing this machine does not open it (the policy still judges); an unlisted port is refused.</summary>
    [Fact]
    public async Task Udp_allow_narrows_and_never_widens_the_policy()
    {
        using var echo = new UdpEcho();
        await using (var host = await Ws2sHost.StartAsync(UdpOn(TestConfig.Defaults, $"127.0.0.1:{echo.Port}")))
        {
            await using var client = await host.ConnectAsync();
            await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = echo.Port, udp = true });
            var answer = await client.ReceiveJsonAsync();
            Assert.Equal(4, answer["code"]!.GetValue<int>());
            Assert.Contains("loopback", answer["message"]!.GetValue<string>());
        }
        await using (var host = await Ws2sHost.StartAsync(UdpOn(TestConfig.Loopback, "127.0.0.1:9")))
        {
            await using var client = await host.ConnectAsync();
            await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = echo.Port, udp = true });
            var answer = await client.ReceiveJsonAsync();
            Assert.Equal(4, answer["code"]!.GetValue<int>());
            Assert.Contains("not in udp.allow", answer["message"]!.GetValue<string>());
        }
        Assert.Equal(0, echo.Received);
    }

    /// <summary>Attack: a flood of datagrams; past the client's rate they are dropped, never sent (the clock stands still).</summary>
    [Fact]
    public async Task Datagrams_past_the_clients_rate_are_dropped()
    {
        using var echo = new UdpEcho();
        var clock = new WatchedClock();
        await using var host = await Ws2sHost.StartAsync(UdpOn(TestConfig.Loopback).With(o => o.Udp.MaxPacketsPerSecond = 5), clock.Serves);
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = echo.Port, udp = true, binary = true });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
        for (var i = 0; i < 50; i++) await client.SendBinaryAsync(new[] { (byte)i });
        for (var i = 0; i < 5; i++)
        {
            var back = await client.ReceiveAsync();
            Assert.Equal([(byte)i], back.Bytes);
        }
        // The session is still there, and the five were all that left: one more round trip proves the rest were dropped.
        clock.Advance(TimeSpan.FromSeconds(1));
        await client.SendBinaryAsync(new byte[] { 200 });
        var last = await client.ReceiveAsync();
        Assert.Equal([(byte)200], last.Bytes);
        Assert.Equal(6, echo.Received);
    }

    [SkippableFact]
    public async Task The_wisp_js_client_sends_datagrams_over_UDP_streams_each_one_DATA_packet()
    {
        using var echo = new UdpEcho();
        await using var host = await Ws2sHost.StartAsync(UdpOn(TestConfig.Loopback).With(o =>
        {
            o.Origins = ["*"];
            o.Udp.MaxPacketsPerSecond = 10_000;
            o.Udp.MaxBytesPerSecond = 64 << 20;
        }));
        var result = await WispClient.RunAsync("--url", new Uri(host.Url, "/wisp/").ToString(), "--version", "2", "--host", "127.0.0.1",
            "--port", $"{echo.Port}", "--mode", "udp-echo", "--streams", "10", "--datagrams", "20");
        Assert.True(result["ok"]?.GetValue<bool>() == true, result.ToJsonString());
        Assert.True(result["udpEnabled"]!.GetValue<bool>(), result.ToJsonString()); // INFO offered the UDP extension
        Assert.Equal(0, result["notOneDatagram"]!.GetValue<int>());
        Assert.Equal(200, result["datagramsReceived"]!.GetValue<int>());
    }
}
