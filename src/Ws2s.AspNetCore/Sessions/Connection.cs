using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.FSharp.Collections;
using Ws2s.AspNetCore.Connectors;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Sessions;

/// <summary>
/// One generation of a session's connection to its peer: its resolve and its attempts at
/// the hops the core judged (each carried out by the connector for the hop's scheme), of which the first
/// to connect wins and becomes the <see cref="ConnectedPeer"/>. Everything it learns goes back to the
/// session as an <see cref="Input"/> of its generation. It owns what it acquires: disposing it releases
/// all of it, also what arrives afterwards, and nothing of it is heard again.
/// </summary>
internal sealed class Connection : IDisposable
{
    private readonly CancellationTokenSource _cancel = new();
    /// <summary>Ends the attempts in flight: once one has won, or when the connection is closed (one token for them all, not one linked per attempt).</summary>
    private readonly CancellationTokenSource _attempts = new();
    private readonly GenerationInputs _inputs;
    private readonly ConnectorSet _connectors;
    private readonly IPAddress _client;

    private readonly Lock _gate = new();
    private bool _disposed;
    /// <summary>The attempt that won, once one has.</summary>
    private ConnectedPeer? _peer;

    /// <summary>The client's peer-connection slot this generation holds, once it dials.</summary>
    private IDisposable? _slot;

    public bool HoldsSlot => _slot is not null;

    /// <summary>Holds <paramref name="slot"/> until the connection is disposed.</summary>
    public void Hold(IDisposable slot) => _slot = slot;

    /// <remarks><paramref name="reads"/>, <paramref name="writes"/>: the session's read tickets and held writes (see <see cref="GenerationInputs"/>).</remarks>
    public Connection(long generation, ChannelWriter<Input> inputs, ILogger log, ConnectorSet connectors, IPAddress client, SessionReads? reads = null,
        WriteBehind? writes = null)
    {
        _inputs = new GenerationInputs(generation, inputs, log, _cancel.Token, reads, writes);
        _connectors = connectors;
        _client = client;
    }

    /// <summary>What a connector may need of the session; made for each dial (most connectors keep none of it).</summary>
    private PeerContext Context() => new(_client, reason => _ = _inputs.PostAsync(Input.NewSocketFailed(Generation, reason)));

    private long Generation => _inputs.Generation;

    public void StartResolve(string host) => _inputs.Run(ResolveAsync(host));

    public void StartDial(Hop hop) => _inputs.Run(DialAsync(hop));

    /// <summary>
    /// Runs the TLS step on the connected peer (at connect, or <c>starttls</c> later); see <see cref="ConnectedPeer.SecureAsync"/>.
    /// It runs until it ends or the connection is closed (the core closes it when its deadline passes).
    /// </summary>
    public void StartSecure(string serverName, TlsUpgrade tls) =>
        _inputs.Run(Peer() is { } peer
            ? peer.SecureAsync(serverName, tls)
            : _inputs.PostAsync(Input.NewSecureFailed(Generation, "the connection is closed")).AsTask());

    public void StartWrite(ReadOnlyMemory<byte> bytes)
    {
        if (Peer() is { } peer) peer.Write(bytes);
        else _inputs.Run(_inputs.PostAsync(Input.NewSocketFailed(Generation, "the connection is closed")).AsTask());
    }

    /// <summary>Sends FIN; reading goes on until the peer closes.</summary>
    public void ShutdownSend() => Peer()?.ShutdownSend();

    private ConnectedPeer? Peer()
    {
        lock (_gate) return _disposed ? null : _peer;
    }

    private async Task ResolveAsync(string host)
    {
        await Task.Yield(); // off the session's thread, which may be a socket's event thread (InlineCompletions)
        Input outcome;
        try
        {
            var addresses = await Dns.GetHostAddressesAsync(host, _cancel.Token);
            outcome = Input.NewResolved(Generation, ListModule.OfArray(addresses));
        }
        catch (SocketException)
        {
            outcome = Input.NewResolveFailed(Generation);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        await _inputs.PostAsync(outcome);
    }

    /// <summary>
    /// One attempt at a hop. Several may run at once (happy eyeballs): the first to connect wins and is
    /// reported; the others are cancelled and closed by their connectors, and nothing of them is reported.
    /// </summary>
    private async Task DialAsync(Hop hop)
    {
        var connector = _connectors.Find(hop.Scheme);
        // A connector's code (an application's too) runs off the session's thread, which may be a socket's event thread
        // (InlineCompletions): a connector that blocks must not hold up other sockets. ws2s's own TCP and UDP never block.
        if (connector is not INonBlockingConnector) await Task.Yield();
        if (connector is null)
        {
            await Failed(DialError.NewDialFailed($"this server has no connector for {hop.Scheme}: destinations"));
            return;
        }
        PeerStream stream;
        try
        {
            if (connector is INonBlockingConnector)
                stream = await connector.ConnectAsync(hop, Context(), _attempts.Token);
            else
            {
                // An application's connector gets a token of its own attempt, which never fires once its connect is over
                // (it may keep a registration past it): the shared one is cancelled when an attempt wins, the winner's too.
                using var attempt = CancellationTokenSource.CreateLinkedTokenSource(_attempts.Token);
                stream = await connector.ConnectAsync(hop, Context(), attempt.Token);
            }
        }
        catch (DialFailedException e)
        {
            await Failed(e.Error);
            return;
        }
        catch (SocketException e)
        {
            await Failed(SocketWords.DialError(e.SocketErrorCode));
            return;
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            return;
        }
        ConnectedPeer? won = null;
        lock (_gate)
        {
            if (!_disposed && _peer is null) _peer = won = new ConnectedPeer(stream, _inputs, _cancel.Token);
        }
        if (won is null)
        {
            stream.Dispose(); // another attempt won, or the connection was closed meanwhile
            return;
        }
        _attempts.Cancel();
        await _inputs.PostAsync(Input.NewDialled(Generation));
        won.StartReading();
    }

    /// <summary>An attempt failed: reported unless another has won already.</summary>
    private async Task Failed(DialError error)
    {
        if (!_attempts.IsCancellationRequested) await _inputs.PostAsync(Input.NewDialFailedWith(Generation, error));
    }

    public void Dispose()
    {
        ConnectedPeer? peer;
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            peer = _peer;
        }
        // Attempts in flight are cancelled: each connector releases what it holds, and a stream that
        // arrives after this is disposed by its attempt (above).
        _cancel.Cancel();
        _attempts.Cancel();
        peer?.Dispose();
        _slot?.Dispose();
    }
}
