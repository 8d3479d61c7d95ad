using System.Buffers;
using System.Net;
using System.Net.WebSockets;
using System.Text.Json;
using System.Threading.Channels;
using Ws2s.AspNetCore.Telemetry;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Sessions;

/// <summary>
/// Carries out one session's effects, in order: replies to the client, work on the connection of each
/// generation, the close the core decided, and what it asks to be counted. Every effect case has its
/// branch (a test checks the list against the core's union).
/// </summary>
internal sealed class SessionEffects(WebSocket client, ChannelWriter<Input> inputs, RunnerServices services, IPAddress clientAddress,
    SessionObserver observer, ILogger log) : IDisposable
{
    private readonly Dictionary<long, Connection> _connections = [];
    private readonly PooledBufferWriter _responseBuffer = new();
    private Utf8JsonWriter? _responseWriter;

    /// <summary>The close the core decided (status and reason), once it has.</summary>
    public (int Status, string Reason)? CloseWith { get; private set; }

    /// <summary>A close the host decides (shutting down, a fault), unless the core decided one already.</summary>
    public void CloseUnlessDecided(int status, string reason) => CloseWith ??= (status, reason);

    /// <summary>The effect cases this interpreter carries out, by name (checked against the core's union by a test).</summary>
    public static readonly IReadOnlySet<string> Handled = new HashSet<string>
    {
        nameof(Effect.Reply), nameof(Effect.ReplyBinary), nameof(Effect.Resolve), nameof(Effect.Dial),
        nameof(Effect.StartAttemptTimer), nameof(Effect.StartConnectTimer), nameof(Effect.Write), nameof(Effect.CloseConnection),
        nameof(Effect.ShutdownConnection), nameof(Effect.CloseClient), nameof(Effect.Observe), nameof(Effect.SecureConnection),
    };

    public async ValueTask ExecuteAsync(Effect effect, CancellationToken cancel)
    {
        switch (effect)
        {
            case Effect.Reply reply:
                if (reply.Response is Response.RecvData data) observer.ToClient(data.Item.Length);
                _responseWriter ??= new Utf8JsonWriter(_responseBuffer, Codec.writerOptions);
                _responseWriter.Reset();
                Codec.writeResponse(_responseWriter, reply.Response);
                try
                {
                    await client.SendAsync(_responseBuffer.WrittenMemory, WebSocketMessageType.Text, true, cancel);
                }
                finally
                {
                    _responseBuffer.Clear(); // back to the pool: an idle session holds no reply buffer
                }
                break;
            case Effect.ReplyBinary binary:
                observer.ToClient(binary.Bytes.Length);
                await client.SendAsync(binary.Bytes, WebSocketMessageType.Binary, true, cancel);
                break;
            case Effect.Resolve resolve:
                ConnectionOf(resolve.Generation).StartResolve(resolve.Name);
                break;
            case Effect.Dial dial:
                observer.LastTarget = dial.Hop.Text;
                ConnectionOf(dial.Generation).StartDial(dial.Hop);
                break;
            case Effect.SecureConnection secure:
                ConnectionOf(secure.Generation).StartSecure(secure.ServerName, services.Connectors.Tls, services.TlsHandshakeTimeout);
                break;
            case Effect.StartAttemptTimer attemptTimer:
                ConnectionOf(attemptTimer.Generation).StartAttemptTimer(TimeSpan.FromMilliseconds(attemptTimer.Milliseconds));
                break;
            case Effect.StartConnectTimer timer:
                observer.ConnectStarted(timer.Generation);
                ConnectionOf(timer.Generation).StartTimer(timer.Seconds);
                break;
            case Effect.Write write:
                observer.ToPeer(write.Bytes.Length);
                ConnectionOf(write.Generation).StartWrite(write.Bytes);
                break;
            case Effect.CloseConnection close:
                if (_connections.Remove(close.Generation, out var connection)) connection.Dispose();
                break;
            case Effect.ShutdownConnection shutdown:
                if (_connections.TryGetValue(shutdown.Generation, out var halfClosed)) halfClosed.ShutdownSend();
                break;
            case Effect.CloseClient closeClient:
                CloseWith = (closeClient.Status, closeClient.Reason);
                break;
            case Effect.Observe observe:
                observer.Count(observe.Item);
                break;
            default:
                throw new InvalidOperationException($"the host does not know the effect {effect}");
        }
    }

    private Connection ConnectionOf(long generation)
    {
        if (!_connections.TryGetValue(generation, out var connection))
        {
            connection = new Connection(generation, inputs, services.Clock.Time, log, services.Connectors, clientAddress);
            _connections.Add(generation, connection);
        }
        return connection;
    }

    /// <summary>Closes every connection still open.</summary>
    public void Dispose()
    {
        foreach (var connection in _connections.Values) connection.Dispose();
        _connections.Clear();
        _responseWriter?.Dispose();
        _responseBuffer.Clear();
    }
}
