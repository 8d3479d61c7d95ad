using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Ws2s.Host.Tests;

/// <summary>
/// Attack (issue 10, 1): connections that never speak. A flood of them up to the file descriptor
/// limit used to crash ws2sd ("Internal CLR error", exit -6), and each was held ~130 s.
/// </summary>
public sealed class ConnectionFloodTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("ws2s-flood-").FullName;

    public void Dispose() => Directory.Delete(_home, recursive: true);

    private async Task<(ServerProcess Server, Uri Url)> StartAsync(int handshakeSeconds, string[]? launcher = null)
    {
        var config = Path.Combine(_home, "config.json");
        await File.WriteAllTextAsync(config,
            TestConfig.Loopback.With(o => o.Limits.HandshakeTimeoutSeconds = handshakeSeconds));
        var server = ServerProcess.Start(["--config", config], home: _home, launcher: launcher);
        return (server, await server.ListeningUrlAsync());
    }

    /// <summary>A TCP connection to the server that says nothing.</summary>
    private static async Task<Socket> SilentAsync(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, port);
        return socket;
    }

    /// <summary>Waits until the server closes the socket (end of stream or reset); false if it is still open after <paramref name="within"/>.</summary>
    private static async Task<bool> ClosedByServerAsync(Socket socket, TimeSpan within)
    {
        using var timeout = new CancellationTokenSource(within);
        var buffer = new byte[4096];
        try
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token) > 0) { }
            return true;
        }
        catch (SocketException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    [Fact]
    public async Task More_silent_connections_than_file_descriptors_neither_kill_the_server_nor_lock_out_a_real_client()
    {
        var (server, url) = await StartAsync(handshakeSeconds: 60, launcher: ["prlimit", "--nofile=512:512", "--"]);
        await using var _ = server;
        using var echo = Peer.Echo();
        var silent = new List<Socket>();
        try
        {
            // Twice the process's descriptor limit, all held open by this test (its own limit is higher).
            for (var i = 0; i < 1024; i++)
            {
                try
                {
                    silent.Add(await SilentAsync(url.Port));
                }
                catch (SocketException)
                {
                    // The server's backlog may refuse some: that is fine, the rest are held.
                }
            }

            // A real client still gets a session and relays bytes, while the silent ones are still open.
            Assert.False(server.Process.HasExited, "ws2sd died:\n" + string.Join("\n", server.Output));
            await using var client = await WsClient.ConnectAsync(url);
            await client.EchoThroughAsync(echo.Port, "still here");

            Assert.False(server.Process.HasExited, "ws2sd died:\n" + string.Join("\n", server.Output));
            Assert.Contains(server.Output, line => line.Contains("limits.maxConnections"));
            using var http = new HttpClient();
            var metrics = await http.GetStringAsync(new UriBuilder(url) { Scheme = "http", Path = "/metrics" }.Uri);
            Assert.Matches("ws2s_connections_dropped_total\\{[^}]*reason=\"evicted_silent\"[^}]*\\} [1-9]", metrics);
        }
        finally
        {
            foreach (var socket in silent) socket.Dispose();
        }
        Assert.False(server.Process.HasExited);
    }

    [Theory]
    [InlineData("")]
    [InlineData("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")]
    public async Task A_connection_that_does_not_finish_its_handshake_is_closed_within_the_handshake_timeout(string partialRequest)
    {
        var (server, url) = await StartAsync(handshakeSeconds: 2);
        await using var _ = server;
        using var socket = await SilentAsync(url.Port);
        if (partialRequest != "") await socket.SendAsync(Encoding.ASCII.GetBytes(partialRequest), SocketFlags.None);
        var opened = Stopwatch.GetTimestamp();
        // Kestrel's own keep-alive timeout would have held it 130 s; the handshake timeout is 2 s
        // (checked once a second), so 10 s is ample and far from 130.
        Assert.True(await ClosedByServerAsync(socket, TimeSpan.FromSeconds(10)), "the silent connection is still open");
        Assert.True(Stopwatch.GetElapsedTime(opened) >= TimeSpan.FromSeconds(1), "closed before the handshake timeout");
    }
}
