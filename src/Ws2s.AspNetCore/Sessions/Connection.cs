using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.FSharp.Collections;
using Ws2s.AspNetCore.Connectors;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Sessions;

/// <summary>
/// One generation of a session's connection to its peer: its resolve, its timers, and its attempts at
/// the hops the core judged (each carried out by the connector for the hop's scheme), of which the first
/// to connect wins and becomes the <see cref="ConnectedPeer"/>. Everything it learns goes back to the
/// session as an <see cref="Input"/> of its generation. It owns what it acquires: disposing it releases
/// all of it, also what arrives afterwards, and nothing of it is heard again.
/// </summary>
internal sealed class Connection : IDisposable
{
    private readonly CancellationTokenSource _cancel = new();
    /// <summary>Stops the other attempts and the connect and attempt timers once an attempt has won.</summary>
    private readonly CancellationTokenSource _connected = new();
    private CancellationTokenSource? _attemptTimer;
    private readonly GenerationInputs _inputs;
    private readonly TimeProvider _time;
    private readonly ConnectorSet _connectors;
    private readonly PeerContext _context;

    private readonly Lock _gate = new();
    private bool _disposed;
    /// <summary>The attempt that won, once one has.</summary>
    private ConnectedPeer? _peer;

    public Connection(long generation, ChannelWriter<Input> inputs, TimeProvider time, ILogger log, ConnectorSet connectors, IPAddress client)
    {
        _inputs = new GenerationInputs(generation, inputs, log, _cancel.Token);
        _time = time;
        _connectors = connectors;
        _context = new PeerContext(client, reason => _ = _inputs.PostAsync(Input.NewSocketFailed(generation, reason)));
    }

    private long Generation => _inputs.Generation;

    public void StartResolve(string host) => _inputs.Run(ResolveAsync(host));

    public void StartDial(Hop hop) => _inputs.Run(DialAsync(hop));

    public void StartTimer(int seconds) =>
        _inputs.Run(TimerAsync(TimeSpan.FromSeconds(seconds), Input.NewConnectTimerFired(Generation), _connected.Token));

    /// <summary>(Re)starts the attempt timer (RFC 8305's connection attempt delay): one per connection, the latest attempt's.</summary>
    public void StartAttemptTimer(TimeSpan delay)
    {
        var timer = CancellationTokenSource.CreateLinkedTokenSource(_connected.Token);
        Interlocked.Exchange(ref _attemptTimer, timer)?.Cancel();
        _inputs.Run(TimerAsync(delay, Input.NewAttemptTimerFired(Generation), timer.Token));
    }

    /// <summary>Runs the TLS step on the connected peer (at connect, or <c>starttls</c> later); see <see cref="ConnectedPeer.SecureAsync"/>.</summary>
    public void StartSecure(string serverName, TlsUpgrade tls, TimeSpan timeout) =>
        _inputs.Run(Peer() is { } peer
            ? peer.SecureAsync(serverName, tls, timeout, _time)
            : _inputs.PostAsync(Input.NewSecureFailed(Generation, "the connection is closed")).AsTask());

    public void StartWrite(ReadOnlyMemory<byte> bytes) =>
        _inputs.Run(Peer() is { } peer
            ? peer.WriteAsync(bytes)
            : _inputs.PostAsync(Input.NewSocketFailed(Generation, "the connection is closed")).AsTask());

    /// <summary>Sends FIN; reading goes on until the peer closes.</summary>
    public void ShutdownSend() => Peer()?.ShutdownSend();

    private ConnectedPeer? Peer()
    {
        lock (_gate) return _disposed ? null : _peer;
    }

    private async Task ResolveAsync(string host)
    {
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
        if (_connectors.Find(hop.Scheme) is not { } connector)
        {
            await Failed(DialError.NewDialFailed($"this server has no connector for {hop.Scheme}: destinations"));
            return;
        }
        PeerStream stream;
        try
        {
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(_cancel.Token, _connected.Token);
            stream = await connector.ConnectAsync(hop, _context, attempt.Token);
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
        _connected.Cancel();
        await _inputs.PostAsync(Input.NewDialled(Generation));
        won.StartReading();
    }

    /// <summary>An attempt failed: reported unless another has won already.</summary>
    private async Task Failed(DialError error)
    {
        if (!_connected.IsCancellationRequested) await _inputs.PostAsync(Input.NewDialFailedWith(Generation, error));
    }

    /// <summary>Posts <paramref name="fired"/> after <paramref name="delay"/>, unless stopped or the connection is closed first.</summary>
    private async Task TimerAsync(TimeSpan delay, Input fired, CancellationToken stop)
    {
        try
        {
            using var either = CancellationTokenSource.CreateLinkedTokenSource(_cancel.Token, stop);
            await Task.Delay(delay, _time, either.Token);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        await _inputs.PostAsync(fired);
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
        peer?.Dispose();
    }
}
