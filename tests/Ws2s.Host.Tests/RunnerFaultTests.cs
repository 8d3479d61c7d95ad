using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.FSharp.Collections;
using Ws2s.AspNetCore.Connectors;
using Ws2s.AspNetCore.Sessions;
using Ws2s.AspNetCore.Ssh;
using Ws2s.AspNetCore.Telemetry;
using Ws2s.Protocol;

namespace Ws2s.Host.Tests;

/// <summary>
/// The runner's own faults and races (issue 11), forced directly on the runner and on connections:
/// a bug ends the session with code 1 and a close frame, and nothing a connection acquires outlives it.
/// </summary>
public sealed class RunnerFaultTests
{
    /// <summary>A session whose core throws on the first client frame: a bug in the runner's hands.</summary>
    private sealed class BrokenProtocol : ISessionProtocol
    {
        public FSharpList<Effect> Start(Instant now) => FSharpList<Effect>.Empty;

        public FSharpList<Effect> Step(Instant now, Input input) =>
            input.IsClientText ? throw new InvalidOperationException("a bug") : Session.step(Session.start(Session.defaultSettings, now), now, input).Item2;

        public Instant? NextDeadline => null;

        public bool AcceptsFrame => true;

        public int QueuedBytes => 0;

        public bool IsEnded => false;

        public void Reconfigure(Ws2s.Protocol.Session.Settings server) { }

        public void EndConnects(DateTimeOffset expiredAt) { }
    }

    /// <summary>A session whose one step answers and then closes (a connect timing out as the idle timeout ends the session).</summary>
    private sealed class AnswerThenClose : ISessionProtocol
    {
        public FSharpList<Effect> Start(Instant now) => FSharpList<Effect>.Empty;

        public FSharpList<Effect> Step(Instant now, Input input)
        {
            if (!input.IsClientText) return FSharpList<Effect>.Empty;
            IsEnded = true;
            return ListModule.OfSeq([Effect.NewReply(Response.NewDone("ping")), Effect.NewCloseClient(1000, "idle timeout: no traffic for 60 s")]);
        }

        public Instant? NextDeadline => null;

        public bool AcceptsFrame => !IsEnded;

        public int QueuedBytes => 0;

        public bool IsEnded { get; private set; }

        public void Reconfigure(Ws2s.Protocol.Session.Settings server) { }

        public void EndConnects(DateTimeOffset expiredAt) { }
    }

    /// <summary>The server's side of a client that is gone by the time the server answers: every send fails as a reset would.</summary>
    private sealed class GoneWhenAnswered(WebSocket inner) : WebSocket
    {
        public override WebSocketCloseStatus? CloseStatus => inner.CloseStatus;
        public override string? CloseStatusDescription => inner.CloseStatusDescription;
        public override WebSocketState State => inner.State;
        public override string? SubProtocol => inner.SubProtocol;
        public override void Abort() => inner.Abort();
        public override Task CloseAsync(WebSocketCloseStatus status, string? description, CancellationToken cancel) => inner.CloseAsync(status, description, cancel);
        public override Task CloseOutputAsync(WebSocketCloseStatus status, string? description, CancellationToken cancel) => inner.CloseOutputAsync(status, description, cancel);
        public override void Dispose() => inner.Dispose();
        public override Task<WebSocketReceiveResult> ReceiveAsync(ArraySegment<byte> buffer, CancellationToken cancel) => inner.ReceiveAsync(buffer, cancel);
        public override ValueTask<ValueWebSocketReceiveResult> ReceiveAsync(Memory<byte> buffer, CancellationToken cancel) => inner.ReceiveAsync(buffer, cancel);
        public override Task SendAsync(ArraySegment<byte> buffer, WebSocketMessageType type, bool end, CancellationToken cancel) =>
            throw new WebSocketException(WebSocketError.ConnectionClosedPrematurely);
        public override ValueTask SendAsync(ReadOnlyMemory<byte> buffer, WebSocketMessageType type, bool end, CancellationToken cancel) =>
            throw new WebSocketException(WebSocketError.ConnectionClosedPrematurely);
    }

    /// <summary>Keeps every log line written.</summary>
    private sealed class Lines : ILogger
    {
        public List<string> Written { get; } = [];
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel level) => true;
        public void Log<TState>(LogLevel level, EventId id, TState state, Exception? e, Func<TState, Exception?, string> format)
        {
            lock (Written) Written.Add(format(state, e));
        }
    }

    /// <summary>
    /// Found in review: when a send failed in a step that also closed the session, the close the core decided was lost and
    /// the session was logged as ended with 1011 "unexpected server error", a false alarm for a client that went away.
    /// </summary>
    [Fact]
    public async Task A_client_gone_before_the_answer_still_ends_with_the_close_the_core_decided()
    {
        var (server, client) = await PairAsync();
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        using var metrics = new Ws2sMetrics(services.GetRequiredService<IMeterFactory>());
        var sessions = Sessions();
        var log = new Lines();
        var runner = new SessionRunner(new ClientSocket(new GoneWhenAnswered(server), new ClientTcp(null), "test"), new AnswerThenClose(), sessions,
            new SessionObserver(metrics, log, "test", TimeProvider.System), new SessionClient(IPAddress.Loopback));
        var running = runner.RunAsync(CancellationToken.None);
        using var patience = new CancellationTokenSource(WsClient.Patience);
        await client.SendAsync("""{"command":"ping"}"""u8.ToArray(), WebSocketMessageType.Text, true, patience.Token);
        client.Abort();
        await running.WaitAsync(patience.Token);
        string ended;
        lock (log.Written) ended = log.Written.Single(l => l.Contains("ended after"));
        Assert.Contains("close 1000 idle timeout: no traffic for 60 s", ended);
    }

    /// <summary>What a runner shares with the others, at the defaults, on the real clock, with TCP the only connector.</summary>
    private static RunnerServices Sessions() =>
        new(() => new Ws2s.AspNetCore.Configuration.Ws2sOptions.LimitOptions(), TimeProvider.System,
            new QueueBudget(1 << 20), new ConnectorSet([new TcpConnector()], new TlsTrust([])), NullLoggerFactory.Instance);

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
        var sessions = Sessions();
        var runner = new SessionRunner(new ClientSocket(server, new ClientTcp(null), "test"), new BrokenProtocol(), sessions,
            new SessionObserver(metrics, NullLogger.Instance, "test", TimeProvider.System), new SessionClient(IPAddress.Loopback));
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
            var connection = new Connection(i, inputs.Writer, NullLogger.Instance, connectors, IPAddress.Loopback);
            connection.StartDial(Hop.NewTcpHop(target));
            if (i % 2 == 1) await Task.Yield();
            connection.Dispose();
        }
        // The race was run: some dials reached the listener before their Dispose.
        Assert.True(listener.Pending(), "no dial reached the listener: the race was not run");
        // Every socket ws2s opened toward the listener ends up closed from its side: none is left connecting or
        // established (the kernel's table, /proc/net/tcp; the listener's own ends are not counted).
        var deadline = DateTime.UtcNow + WsClient.Patience;
        while (OpenSocketsTo(target.Port) is var open && open > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{open} sockets toward the listener were left open");
            await Task.Delay(50); // polling the kernel's table
        }
    }

    /// <summary>
    /// Found by CI under load: a session that asks for TLS at once may finish the handshake before the dial gets to
    /// start its plain reader; that late start was a second reader on the secured stream ("another read operation
    /// is pending", code 1 and close 1011). The late start must do nothing.
    /// </summary>
    [Fact]
    public async Task A_plain_reader_started_after_the_tls_step_never_reads_beside_its_reader()
    {
        using var pki = new TestPki();
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var server = Task.Run(async () =>
        {
            using var accepted = await listener.AcceptSocketAsync();
            await using var tls = new System.Net.Security.SslStream(new NetworkStream(accepted, ownsSocket: false));
            await tls.AuthenticateAsServerAsync(pki.Leaf);
            await tls.WriteAsync("ping"u8.ToArray());
            var go = new byte[2];
            await tls.ReadExactlyAsync(go);
            await tls.WriteAsync("pong"u8.ToArray());
            _ = await tls.ReadAsync(go.AsMemory()); // until the client closes (whatever it reads)
        });
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync((IPEndPoint)listener.LocalEndpoint);
        var inputs = Channel.CreateUnbounded<Input>();
        using var closed = new CancellationTokenSource();
        var peer = new ConnectedPeer(PeerStream.Of(socket), new GenerationInputs(1, inputs.Writer, NullLogger.Instance, closed.Token), closed.Token);
        try
        {
            await peer.SecureAsync("redis.test", new TlsUpgrade(new TlsTrust([pki.CaFile])));
            peer.StartReading(); // the dial's call, late
            var seen = new List<Input>();
            async Task<string> ReceivedAsync()
            {
                using var patience = new CancellationTokenSource(WsClient.Patience);
                while (true)
                {
                    var input = await inputs.Reader.ReadAsync(patience.Token);
                    seen.Add(input);
                    Assert.False(input.IsRunnerFault, $"a second reader faulted: {string.Join(", ", seen)}");
                    if (input is Input.Received received) return System.Text.Encoding.ASCII.GetString(received.Bytes.Span);
                }
            }
            Assert.Equal("ping", await ReceivedAsync());
            peer.Write("go"u8.ToArray());
            Assert.Equal("pong", await ReceivedAsync());
            Assert.Contains(seen, i => i.IsSecured);
        }
        finally
        {
            peer.Dispose();
            closed.Cancel();
            socket.Dispose();
        }
        await server.WaitAsync(WsClient.Patience).ContinueWith(_ => { }); // its end is the client's close, however it comes
    }

    /// <summary>Sockets of this machine connecting or connected to 127.0.0.1:<paramref name="port"/> (SYN_SENT or ESTABLISHED).</summary>
    private static int OpenSocketsTo(int port) =>
        File.ReadLines("/proc/net/tcp").Skip(1)
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Count(f => f[2] == $"0100007F:{port:X4}" && f[3] is "01" or "02");
}
