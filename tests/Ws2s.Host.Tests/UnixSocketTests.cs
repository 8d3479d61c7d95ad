using System.Net.WebSockets;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Ws2s.Host.Tests;

/// <summary>Unix-socket destinations for real: a redis-server listening on a Unix socket only, reached in ws2s's own protocol and on the websockify endpoint.</summary>
public sealed class UnixSocketTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ws2s-unix-").FullName;
    private RedisServer? _redis;
    private string Socket => Path.Combine(_dir, "r.sock");

    public async Task InitializeAsync() => _redis = await RedisServer.StartUnixAsync(Socket);

    public async Task DisposeAsync()
    {
        if (_redis is not null) await _redis.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>A server that lists the Redis socket in destinations.allow (and nothing else).</summary>
    private TestConfig Config() => TestConfig.Defaults.With(o => o.Destinations.Allow = ["unix:" + Socket]);

    [Fact]
    public async Task A_listed_unix_socket_carries_redis_in_json_mode()
    {
        await using var host = await Ws2sHost.StartAsync(Config());
        await using var client = await host.ConnectAsync();
        // As ws2s.js 2.1.4 sends a connect it was given no port for.
        await client.SendTextAsync($$"""{"command":"connect","host":"unix:{{Socket}}","port":null}""");
        await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
        await client.SendAsync(new { command = "send", data = "SET k unix\r\nGET k\r\n" });
        var received = new MemoryStream();
        await client.ExpectAnswerAsync("""{"success":true,"code":0,"message":"send done"}""", received);
        await client.ReadDataAsync(received, "+OK\r\n$4\r\nunix\r\n".Length);
        Assert.Equal("+OK\r\n$4\r\nunix\r\n", Encoding.ASCII.GetString(received.ToArray()));
    }

    [Fact]
    public async Task A_listed_unix_socket_carries_redis_in_binary_mode()
    {
        await using var host = await Ws2sHost.StartAsync(Config());
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "unix:" + Socket, binary = true });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
        await client.SendBinaryAsync("*1\r\n$4\r\nPING\r\n"u8.ToArray());
        var reply = await client.ReceiveAsync();
        Assert.Equal(WebSocketMessageType.Binary, reply.Type);
        Assert.Equal("+PONG\r\n", reply.Text);
    }

    [Fact]
    public async Task Websockify_relays_raw_frames_to_a_unix_target_from_rawTargets_and_from_a_token_file()
    {
        var tokens = Path.Combine(_dir, "tokens");
        // websockify's own spelling of a Unix target in a token file.
        await File.WriteAllTextAsync(tokens, $"# targets\nfile-redis: unix_socket:{Socket}\n");
        await using var host = await Ws2sHost.StartAsync(Config().With(o =>
        {
            o.RawTargets = new() { ["redis"] = "unix:" + Socket };
            o.RawTokenFile = tokens;
        }));
        foreach (var token in new[] { "redis", "file-redis" })
        {
            await using var client = await WsClient.ConnectAsync(new Uri(host.Url, "/websockify?token=" + token), "http://localhost", "binary");
            await client.SendBinaryAsync("*1\r\n$4\r\nPING\r\n"u8.ToArray());
            var reply = await client.ReceiveAsync();
            Assert.Equal(WebSocketMessageType.Binary, reply.Type);
            Assert.Equal("+PONG\r\n", reply.Text);
        }
    }

    [Fact]
    public async Task A_unix_target_not_listed_in_destinations_allow_closes_the_websockify_session_saying_so()
    {
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback.With(o => o.RawTargets = new() { ["redis"] = "unix:" + Socket }));
        await using var client = await WsClient.ConnectAsync(new Uri(host.Url, "/websockify?token=redis"), "http://localhost", "binary");
        var close = await client.ReceiveAsync();
        Assert.Equal(1008, close.CloseStatus);
        Assert.Contains("destinations.allow", close.CloseReason);
    }

    [Fact]
    public async Task The_session_log_names_the_unix_target()
    {
        var lines = new LoggedLines();
        await using (var host = await Ws2sHost.StartAsync(Config(), services => services.AddSingleton<ILoggerProvider>(lines)))
        {
            await using var client = await host.ConnectAsync();
            await client.SendAsync(new { command = "connect", host = "unix:" + Socket });
            await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
        }
        Assert.Contains(lines.All, l => l.Contains($"last target unix:{Socket}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Tls_runs_over_a_unix_socket_with_the_name_the_client_gives()
    {
        using var pki = new TestPki();
        var path = Path.Combine(_dir, "tls.sock");
        using var listener = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        listener.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        var serving = Task.Run(async () =>
        {
            using var socket = await listener.AcceptAsync();
            await using var tls = new System.Net.Security.SslStream(new System.Net.Sockets.NetworkStream(socket, ownsSocket: false));
            await tls.AuthenticateAsServerAsync(pki.Leaf);
            var buffer = new byte[64];
            var read = await tls.ReadAsync(buffer);
            await tls.WriteAsync(buffer.AsMemory(0, read));
            // Open until ws2s closes: a close right after the echo may overtake "send done" (code 5 first), a race of the test's own.
            while (await tls.ReadAsync(buffer) > 0) { }
        });
        await using var host = await Ws2sHost.StartAsync(
            TestConfig.Defaults.With(o =>
            {
                o.Destinations.Allow = ["unix:" + path];
                o.Tls.TrustedCertificates = [pki.CaFile];
            }));
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "unix:" + path, tls = true, tlsServerName = "redis.test" });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
        await client.SendAsync(new { command = "send", data = "secret" });
        var received = new MemoryStream();
        await client.ExpectAnswerAsync("""{"success":true,"code":0,"message":"send done"}""", received);
        await client.ReadDataAsync(received, 6);
        Assert.Equal("secret", Encoding.ASCII.GetString(received.ToArray()));
        await client.SendAsync(new { command = "close" });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"close done"}""");
        await serving.WaitAsync(WsClient.Patience);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_listed_socket_nobody_listens_on_is_code_2_in_words(bool fileLeftBehind)
    {
        var gone = Path.Combine(_dir, "gone.sock");
        if (fileLeftBehind)
        {
            // A server killed (SIGKILL) leaves its socket file behind: the file is there, nobody listens.
            await _redis!.DisposeAsync();
            gone = Socket;
            Assert.True(File.Exists(gone));
        }
        await using var host = await Ws2sHost.StartAsync(
            TestConfig.Defaults.With(o => o.Destinations.Allow = ["unix:" + gone]));
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "unix:" + gone });
        var answer = await client.ReceiveJsonAsync();
        Assert.Equal(2, (int)answer["code"]!);
        Assert.Equal(fileLeftBehind ? "connection refused" : $"no socket at {gone}", (string)answer["message"]!);
    }
}
