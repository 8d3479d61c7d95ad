using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.FSharp.Collections;
using Ws2s.AspNetCore.Connectors;
using Ws2s.AspNetCore.Sessions;
using Ws2s.AspNetCore.Ssh;
using Ws2s.AspNetCore.Telemetry;
using Ws2s.Protocol;

namespace Ws2s.Host.Tests;

/// <summary>
/// The host's own faults and races (issue 11), forced directly on the runner and on connections:
/// a bug ends the session with code 1 and a close frame, and nothing a connection acquires outlives it.
/// </summary>
public sealed class HostFaultTests
{
    /// <summary>A session whose core throws on the first client frame: a bug in the host's hands.</summary>
    private sealed class BrokenMachine : IMachine
    {
        public FSharpList<Effect> Start() => FSharpList<Effect>.Empty;

        public FSharpList<Effect> Step(Input input) =>
            input.IsClientText ? throw new InvalidOperationException("a bug") : Session.step(Session.start(Session.defaultSettings), input).Item2;

        public bool AcceptsFrame => true;

        public int QueuedBytes => 0;

        public bool IsEnded => false;

        public void Reconfigure(Ws2s.Protocol.Session.Settings server) { }

        public void EndConnects(DateTimeOffset expiredAt) { }
    }

    /// <summary>A server-side and a client-side WebSocket over a real loopback TCP connection.</summary>
    private static async Task<(WebSocket Server, WebSocket Client)> PairAsync()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        var server = await listener.AcceptTcpClientAsync();
        return (WebSocket.CreateFromStream(server.GetStream(), new WebSocketCreationOptions { IsServer = true }),
                WebSocket.CreateFromStream(client.GetStream(), new WebSocketCreationOptions { IsServer = false }));
    }

    [Fact]
    public async Task An_unexpected_exception_ends_the_session_with_code_1_and_a_close_frame()
    {
        var (server, client) = await PairAsync();
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        using var metrics = new Ws2sMetrics(services.GetRequiredService<IMeterFactory>());
        var sessions = new RunnerServices(new Ws2s.AspNetCore.Configuration.Ws2sOptions(), new Ticker(TimeProvider.System),
            new QueueBudget(1 << 20), new ConnectorSet([new TcpConnector()], new TlsTrust([])), NullLoggerFactory.Instance);
        var runner = new SessionRunner(server, new BrokenMachine(), sessions, new SessionObserver(metrics, NullLogger.Instance, "test"),
            IPAddress.Loopback, new ClientTcp(null));
        var running = runner.RunAsync(CancellationToken.None);

        await client.SendAsync("""{"command":"ping"}"""u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        var buffer = new byte[4096];
        using var patience = new CancellationTokenSource(WsClient.Patience);
        var answer = await client.ReceiveAsync(buffer, patience.Token);
        var text = Encoding.UTF8.GetString(buffer, 0, answer.Count);
        Assert.Contains("\"code\":1", text);
        Assert.DoesNotContain("a bug", text); // words, never the exception
        var close = await client.ReceiveAsync(buffer, patience.Token);
        Assert.Equal(WebSocketMessageType.Close, close.MessageType);
        Assert.Equal((WebSocketCloseStatus)1011, client.CloseStatus);
        await client.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", patience.Token);
        await running.WaitAsync(patience.Token); // the runner finishes: nothing is left parked
    }

    [Fact]
    public async Task Dials_that_finish_as_their_connection_is_disposed_leave_no_socket_open()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start(1000);
        var target = (IPEndPoint)listener.LocalEndpoint;
        var inputs = Channel.CreateUnbounded<Input>();
        var connectors = new ConnectorSet([new TcpConnector()], new TlsTrust([]));
        // Dispose races each dial: before it starts, while it connects, or after it has won.
        for (var i = 0; i < 200; i++)
        {
            var connection = new Connection(i, inputs.Writer, TimeProvider.System, NullLogger.Instance, connectors, IPAddress.Loopback);
            connection.StartDial(Hop.NewTcpHop(target));
            if (i % 2 == 1) await Task.Yield();
            connection.Dispose();
        }
        // Every connection that reached the listener (until none arrives for a second) is closed from ws2s's side.
        using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var buffer = new byte[16];
        var reached = 0;
        while (true)
        {
            var next = listener.AcceptSocketAsync(patience.Token).AsTask();
            if (await Task.WhenAny(next, Task.Delay(TimeSpan.FromSeconds(1))) != next) break;
            reached++;
            using var accepted = await next;
            try
            {
                Assert.Equal(0, await accepted.ReceiveAsync(buffer, SocketFlags.None, patience.Token));
            }
            catch (SocketException)
            {
                // reset: closed too
            }
        }
        Assert.InRange(reached, 1, 200); // some dials won before their Dispose: the race was run
    }
}
