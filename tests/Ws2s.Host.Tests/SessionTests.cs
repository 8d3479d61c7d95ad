using Microsoft.Extensions.DependencyInjection;
using System.Net.WebSockets;
using System.Text;

namespace Ws2s.Host.Tests;

/// <summary>Conversations with the live server about failures: each gets a clear answer and harms no other session.</summary>
public sealed class SessionTests
{
    private const string ConnectDone = """{"success":true,"code":0,"message":"connect done"}""";

    [Fact]
    public async Task A_reset_by_the_peer_is_code_5_with_the_reason_and_the_session_goes_on()
    {
        using var resetter = Peer.Resetter();
        using var echo = Peer.Echo();
        await using var host = await Ws2sHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = resetter.Port });
        await client.ExpectAsync(ConnectDone);
        await client.SendAsync(new { command = "send", data = "trigger" });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"send done"}""");
        var closed = await client.ReceiveJsonAsync();
        Assert.Equal(5, (int)closed["code"]!);
        Assert.StartsWith("connection closed by peer", (string)closed["message"]!);

        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = echo.Port });
        await client.ExpectAsync(ConnectDone);
    }

    /// <summary>The clock is faked: the connect waits for its deadline, and the test moves time on once it is armed.</summary>
    [Fact]
    public async Task A_connect_that_gets_no_answer_times_out_with_code_2_and_the_queued_send_gets_code_3()
    {
        using var unanswered = new UnansweredPort();
        var clock = new WatchedClock();
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback, clock.Serves);
        await using var client = await host.ConnectAsync();
        var armed = clock.WhenArmedAsync(TimeSpan.FromSeconds(10));
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = unanswered.Port });
        await client.SendAsync(new { command = "send", data = "waiting" });
        await armed;
        clock.Advance(TimeSpan.FromSeconds(10));
        await client.ExpectAsync("""{"success":false,"code":2,"message":"connect timed out after 10 s"}""");
        await client.ExpectAsync("""{"success":false,"code":3,"message":"illegal socket status, please connect again"}""");
    }

    /// <summary>The clock is faked: without the attempt delay passing, the silent first attempt would hold the connect forever.</summary>
    [Fact]
    public async Task Happy_eyeballs_a_silent_first_address_gives_way_to_the_next_after_250_ms()
    {
        // localhost is 127.0.0.1 then ::1. Same port on both: IPv4 never answers, IPv6 echoes.
        using var unanswered = new UnansweredPort();
        using var echo = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetworkV6, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        echo.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.IPv6Loopback, unanswered.Port));
        echo.Listen();
        var served = Task.Run(async () =>
        {
            using var peer = await echo.AcceptAsync();
            var buffer = new byte[64];
            var n = await peer.ReceiveAsync(buffer);
            await peer.SendAsync(buffer.AsMemory(0, n));
            // Stay open until ws2s closes: a FIN right after the echo may overtake "send done" (code 5 first).
            await peer.ReceiveAsync(buffer);
        });

        var clock = new WatchedClock();
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback, clock.Serves);
        await using var client = await host.ConnectAsync();
        // Tried one after the other, the first attempt would hang until the connect timeout (code 2).
        var attemptDelay = clock.WhenArmedAsync(TimeSpan.FromMilliseconds(250));
        await client.SendAsync(new { command = "connect", host = "localhost", port = unanswered.Port });
        await attemptDelay;
        clock.Advance(TimeSpan.FromMilliseconds(250));
        await client.ExpectAsync(ConnectDone);
        await client.SendAsync(new { command = "send", data = "via ::1" });
        var echoed = new MemoryStream();
        await client.ExpectAnswerAsync("""{"success":true,"code":0,"message":"send done"}""", echoed);
        await client.ReadDataAsync(echoed, 7);
        Assert.Equal("via ::1", Encoding.UTF8.GetString(echoed.ToArray()));
        await client.SendAsync(new { command = "close" });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"close done"}""");
        await served.WaitAsync(WsClient.Patience);
    }

    [Fact]
    public async Task A_message_over_the_size_limit_closes_only_that_session_with_1009()
    {
        using var echo = Peer.Echo();
        await using var host = await Ws2sHost.StartAsync(true, "--limits:maxMessageBytes", "4096");
        await using var healthy = await host.ConnectAsync();
        await healthy.SendAsync(new { command = "connect", host = "127.0.0.1", port = echo.Port });
        await healthy.ExpectAsync(ConnectDone);

        await using var greedy = await host.ConnectAsync();
        await greedy.SendAsync(new { command = "send", data = new string('x', 10_000) });
        var close = await greedy.ReceiveAsync();
        Assert.Equal(WebSocketMessageType.Close, close.Type);
        Assert.Equal(1009, close.CloseStatus);

        await healthy.SendAsync(new { command = "send", data = "still fine" });
        var echoed = new MemoryStream();
        await healthy.ExpectAnswerAsync("""{"success":true,"code":0,"message":"send done"}""", echoed);
        await healthy.ReadDataAsync(echoed, "still fine".Length);
        Assert.Equal("still fine", Encoding.UTF8.GetString(echoed.ToArray()));
    }

    [Fact]
    public async Task A_plain_HTTP_request_gets_the_console_at_the_root_and_426_elsewhere()
    {
        await using var host = await Ws2sHost.StartAsync();
        using var http = new HttpClient();
        var root = await http.GetAsync(new UriBuilder(host.Url) { Scheme = "http" }.Uri);
        Assert.Equal(200, (int)root.StatusCode);
        Assert.Contains("<title>ws2s console</title>", await root.Content.ReadAsStringAsync());
        var library = await http.GetAsync(new UriBuilder(new Uri(host.Url, "/lib/ws2s.js")) { Scheme = "http" }.Uri);
        Assert.Equal(await File.ReadAllTextAsync(Path.Combine(Repository.Root, "clients", "ws2s-js", "ws2s.js")), await library.Content.ReadAsStringAsync());
        var elsewhere = await http.GetAsync(new UriBuilder(new Uri(host.Url, "/nothing-here")) { Scheme = "http" }.Uri);
        Assert.Equal(426, (int)elsewhere.StatusCode);
        Assert.Contains("WebSocket", await elsewhere.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Any_path_upgrades_as_the_original_allowed()
    {
        await using var host = await Ws2sHost.StartAsync();
        await using var client = await host.ConnectAsync("/some/path?x=1");
        await client.SendAsync(new { command = "ping" });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"ping done"}""");
    }

    [Fact]
    public async Task Garbage_binary_and_text_frames_in_every_state_never_disturb_a_parallel_session()
    {
        using var echo = Peer.Echo();
        await using var host = await Ws2sHost.StartAsync();
        await using var healthy = await host.ConnectAsync();
        await healthy.SendAsync(new { command = "connect", host = "127.0.0.1", port = echo.Port });
        await healthy.ExpectAsync(ConnectDone);

        var random = new Random(7);
        await using (var noisy = await host.ConnectAsync())
        {
            for (var i = 0; i < 500; i++)
            {
                var bytes = new byte[random.Next(0, 300)];
                random.NextBytes(bytes);
                if (i % 50 == 0) await noisy.SendAsync(new { command = "connect", host = "127.0.0.1", port = echo.Port });
                else if (i % 2 == 0) await noisy.SendBinaryAsync(bytes);
                else await noisy.SendTextAsync(Encoding.Latin1.GetString(bytes));
            }
            await noisy.SendAsync(new { command = "ping" });
            // Everything sent was answered in order; the last answer is the ping's.
            while (true)
            {
                var json = await noisy.ReceiveJsonAsync();
                if ((string)json["message"]! == "ping done") break;
                Assert.Contains((int)json["code"]!, new[] { -1, 0, 2, 3, 5, 7 });
            }
        }

        var payload = new byte[100_000];
        random.NextBytes(payload);
        await healthy.SendAsync(new { command = "sendb", data = Convert.ToBase64String(payload) });
        var echoed = new MemoryStream();
        var answer = await healthy.ReceiveSkippingDataAsync(echoed);
        Assert.Equal("sendb done", (string)answer["message"]!);
        await healthy.ReadDataAsync(echoed, payload.Length);
        Assert.Equal(payload, echoed.ToArray());
    }

    [Fact]
    public async Task A_client_that_vanishes_mid_connection_leaves_the_server_serving()
    {
        using var echo = Peer.Echo();
        await using var host = await Ws2sHost.StartAsync();
        for (var i = 0; i < 20; i++)
        {
            var client = await host.ConnectAsync();
            await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = echo.Port });
            await client.SendAsync(new { command = "send", data = "bye" });
            client.Socket.Abort();
            await client.DisposeAsync();
        }
        await using var survivor = await host.ConnectAsync();
        await survivor.SendAsync(new { command = "connect", host = "127.0.0.1", port = echo.Port });
        await survivor.ExpectAsync(ConnectDone);
    }
}
