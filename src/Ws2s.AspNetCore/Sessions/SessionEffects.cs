using System.Buffers;
using System.Net;
using System.Net.WebSockets;
using System.Text.Json;
using System.Threading.Channels;
using Ws2s.AspNetCore.Telemetry;
using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Sessions;

/// <summary>
/// Carries out one session's effects, in order: replies to the client, work on the connection of each
/// generation, the close the core decided, and what it asks to be counted. One method per effect case
/// (<see cref="IEffectHandler{T}"/>): a case the core adds does not compile here until it is carried out.
/// </summary>
/// <remarks>
/// <paramref name="unproven"/>: the slot of a session that owes its token, released once the token is accepted.
/// <paramref name="reads"/>, <paramref name="writes"/>: the session's read tickets and held writes, shared by its connections (see <see cref="GenerationInputs"/>).
/// </remarks>
internal sealed class SessionEffects(IClientSide client, ChannelWriter<Input> inputs, RunnerServices services, IPAddress clientAddress,
    SessionObserver observer, ILogger log, IDisposable? unproven = null, SessionReads? reads = null, WriteBehind? writes = null) : IEffectHandler<ValueTask>, IDisposable
{
    private readonly Dictionary<long, Connection> _connections = [];
    private readonly PooledBufferWriter _responseBuffer = new();
    private Utf8JsonWriter? _responseWriter;

    /// <summary>The cancellation of the effect being carried out (the session's).</summary>
    private CancellationToken _cancel;

    /// <summary>The close the core decided (status and reason), once it has.</summary>
    public (int Status, string Reason)? CloseWith { get; private set; }

    /// <summary>Guards what the credentials' verdict (on the pool) hands to the session, against the session's end.</summary>
    private readonly Lock _credentialsGate = new();

    /// <summary>What credentials presented in the connection hold while the session lasts (their subject's session slot).</summary>
    private IDisposable? _credentialsHold;

    /// <summary>When accepted credentials expire (a signed token's <c>exp</c>), until the runner takes it.</summary>
    private DateTimeOffset? _credentialsExpire;

    private bool _disposed;

    /// <summary>When credentials presented in the connection expire (a signed token's <c>exp</c>), once, after they were accepted.</summary>
    public DateTimeOffset? TakeCredentialsExpiry()
    {
        lock (_credentialsGate)
        {
            var expires = _credentialsExpire;
            _credentialsExpire = null;
            return expires;
        }
    }

    /// <summary>A close the runner decides (shutting down, a fault), unless the core decided one already.</summary>
    public void CloseUnlessDecided(int status, string reason) => CloseWith ??= (status, reason);

    public ValueTask ExecuteAsync(Effect effect, CancellationToken cancel)
    {
        _cancel = cancel;
        return EffectModule.dispatch(this, effect);
    }

    public async ValueTask Reply(Response response)
    {
        if (response is Response.RecvData data) observer.ToClient(data.Item.Length);
        _responseWriter ??= new Utf8JsonWriter(_responseBuffer, Codec.writerOptions);
        _responseWriter.Reset();
        Codec.writeAnswer(_responseWriter, response, Codec.carriesToken(response) ? client.TokenFor(response) : "");
        try
        {
            await SendAsync(_responseBuffer.WrittenMemory, WebSocketMessageType.Text);
        }
        finally
        {
            _responseBuffer.Clear(); // back to the pool: an idle session holds no reply buffer
        }
    }

    public ValueTask ReplyBinary(ReadOnlyMemory<byte> bytes)
    {
        observer.ToClient(bytes.Length);
        return SendAsync(bytes, WebSocketMessageType.Binary);
    }

    /// <summary>
    /// Sends a message to the client, if it has one. A send that fails means the client is gone (without a close frame):
    /// the runner hears of it after the step, whose other effects (writes to peers, closes) are carried out all the same.
    /// </summary>
    private async ValueTask SendAsync(ReadOnlyMemory<byte> message, WebSocketMessageType type)
    {
        if (client.Socket is not { } socket) return;
        try
        {
            await socket.SendAsync(message, type, true, _cancel);
        }
        catch (Exception e) when (e is WebSocketException or ObjectDisposedException || (e is OperationCanceledException && !_cancel.IsCancellationRequested))
        {
            client.Lost();
        }
    }

    /// <summary>A peer's bytes as a Wisp DATA packet (framed in the read's own buffer: <see cref="Connectors.PeerPump.WispData"/>).</summary>
    public ValueTask ReplyWispData(uint stream, ReadOnlyMemory<byte> payload)
    {
        var packet = Connectors.PeerPump.WispData(stream, payload);
        observer.ToClient(packet.Length);
        return SendAsync(packet, WebSocketMessageType.Binary);
    }

    // The effects below start work whose outcome comes back as an input: carried out at once.

    public ValueTask Resolve(long generation, string name)
    {
        if (services.LookupRefusal(clientAddress) is { } refusal)
            _ = PostLaterAsync(Input.NewDialFailedWith(generation, DialError.NewThrottled(refusal)));
        else
            ConnectionOf(generation).StartResolve(name);
        return ValueTask.CompletedTask;
    }

    public ValueTask Dial(long generation, Hop hop)
    {
        observer.LastDialled = hop.Text;
        var connection = ConnectionOf(generation);
        // A generation holds one of the client's peer-connection slots from its first attempt to its close.
        if (!connection.HoldsSlot)
        {
            var slot = services.PeerConnections.TryEnter(clientAddress, int.MaxValue, services.MaxPeerConnectionsPerClient, out var refusal);
            if (slot is null)
            {
                _ = PostLaterAsync(Input.NewDialFailedWith(generation, DialError.NewThrottled($"too many connections: {refusal}")));
                return ValueTask.CompletedTask;
            }
            connection.Hold(slot);
        }
        connection.StartDial(hop);
        return ValueTask.CompletedTask;
    }

    /// <summary>Hands the session an input from outside the flow of its loop: never waited for by the loop (the loop is what would make room).</summary>
    private async Task PostLaterAsync(Input input)
    {
        try
        {
            await inputs.WriteAsync(input);
        }
        catch (ChannelClosedException)
        {
            // The session ended meanwhile.
        }
    }

    public ValueTask SecureConnection(long generation, string serverName)
    {
        ConnectionOf(generation).StartSecure(serverName, services.Connectors.Tls);
        return ValueTask.CompletedTask;
    }

    public ValueTask Write(long generation, ReadOnlyMemory<byte> bytes)
    {
        observer.ToPeer(bytes.Length);
        ConnectionOf(generation).StartWrite(bytes);
        return ValueTask.CompletedTask;
    }

    public ValueTask CloseConnection(long generation)
    {
        if (_connections.Remove(generation, out var connection)) connection.Dispose();
        return ValueTask.CompletedTask;
    }

    public ValueTask ShutdownConnection(long generation)
    {
        if (_connections.TryGetValue(generation, out var halfClosed)) halfClosed.ShutdownSend();
        return ValueTask.CompletedTask;
    }

    public ValueTask CloseClient(int status, string reason)
    {
        CloseWith = (status, reason);
        return ValueTask.CompletedTask;
    }

    public ValueTask Observe(Observation observation)
    {
        observer.Count(observation);
        return ValueTask.CompletedTask;
    }

    public ValueTask HandOver(ResumeToken token, long received) => client.HandOver(token, received);

    public ValueTask TakeClient() => client.TakeClient();

    public ValueTask RefuseResume(string reason) => client.RefuseResume(reason);

    /// <summary>Judges the credentials off the session's thread (a signed token's keys may be read) and tells the core.</summary>
    public ValueTask CheckCredentials(Credentials credentials)
    {
        _ = JudgeCredentialsAsync(credentials.Password);
        return ValueTask.CompletedTask;
    }

    private async Task JudgeCredentialsAsync(string token)
    {
        await Task.Yield();
        Input verdict;
        IDisposable? held = null;
        try
        {
            if (services.Admission is not { } admission)
                verdict = Input.NewCredentialsRefused("this server cannot check credentials here");
            else
            {
                (var grant, held, var refusal) = await admission.AdmitTokenAsync(token);
                if (refusal is not null) verdict = Input.NewCredentialsRefused(refusal);
                else
                {
                    // Handed over under the gate: a session that ended meanwhile releases the hold at once (its subject's slot).
                    lock (_credentialsGate)
                    {
                        if (!_disposed)
                        {
                            _credentialsHold = held;
                            _credentialsExpire = grant?.Expires;
                            held = null;
                        }
                    }
                    unproven?.Dispose(); // it has proven itself: no longer among those that owe a token
                    var scope = grant?.Allow is { } allowed ? FSharpOption<FSharpList<string>>.Some(ListModule.OfSeq(allowed.Select(r => r.Text))) : null;
                    verdict = Input.NewCredentialsAccepted(scope);
                }
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log.LogError(e, "checking the credentials of a session from {Client} failed", clientAddress);
            verdict = Input.NewCredentialsRefused("the server could not check the token (it is in the server's log)");
        }
        finally
        {
            held?.Dispose();
        }
        await PostLaterAsync(verdict);
    }

    private Connection ConnectionOf(long generation)
    {
        if (!_connections.TryGetValue(generation, out var connection))
        {
            connection = new Connection(generation, inputs, log, services.Connectors, clientAddress, reads, writes);
            _connections.Add(generation, connection);
        }
        return connection;
    }

    /// <summary>Closes every connection still open.</summary>
    public void Dispose()
    {
        foreach (var connection in _connections.Values) connection.Dispose();
        _connections.Clear();
        lock (_credentialsGate)
        {
            _disposed = true;
            _credentialsHold?.Dispose();
            _credentialsHold = null;
        }
        _responseWriter?.Dispose();
        _responseBuffer.Clear();
    }
}
