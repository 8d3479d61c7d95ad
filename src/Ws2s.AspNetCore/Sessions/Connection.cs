using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.FSharp.Collections;
using Ws2s.AspNetCore.Connectors;
using Ws2s.AspNetCore.Ssh;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Sessions;

/// <summary>
/// One generation of a session's connection to its peer: carries out the core's work for it (resolve,
/// dial attempts of which the first to connect wins, an SSH tunnel, timers) and then pumps bytes with a
/// <see cref="PeerPump"/>. Everything it learns goes back to the session as an <see cref="Input"/> of
/// its generation. It owns what it acquires under one lock: disposing it releases all of it, also
/// what arrives afterwards, and nothing of it is heard again.
/// </summary>
internal sealed class Connection(long generation, ChannelWriter<Input> inputs, TimeProvider time, ILogger log) : IDisposable
{
    private readonly CancellationTokenSource _cancel = new();
    /// <summary>Stops the connect and attempt timers once connected (the core would ignore them; this frees them early).</summary>
    private readonly CancellationTokenSource _connected = new();
    private CancellationTokenSource? _attemptTimer;

    private readonly Lock _gate = new();
    private bool _disposed;
    /// <summary>The connected peer, once an attempt has won, and its pump.</summary>
    private PeerStream? _peer;
    private PeerPump? _pump;
    /// <summary>Connection attempts in flight.</summary>
    private readonly List<Socket> _attempts = [];
    private SshTunnel? _tunnel;
    /// <summary>The pump's read loop, and how to stop it (before a TLS handshake takes the stream over).</summary>
    private Task? _reading;
    private CancellationTokenSource? _readStop;
    /// <summary>A TLS handshake has the stream: no plain reader may start (the session may ask for it before the dial's reader has begun).</summary>
    private bool _securing;

    public void StartResolve(string host) => Run(ResolveAsync(host));

    public void StartDial(IPEndPoint endpoint) => Run(DialAsync(endpoint, door: null));

    public void StartTimer(int seconds) => Run(TimerAsync(TimeSpan.FromSeconds(seconds), Input.NewConnectTimerFired(generation), _connected.Token));

    public void StartTunnel(IPEndPoint server, SshLogin login, Protocol.Host host, Port port, SshLogins sessions, IPAddress client) =>
        Run(TunnelAsync(server, login, host.Canonical, port, sessions, client));

    /// <summary>(Re)starts the attempt timer (RFC 8305's connection attempt delay): one per connection, the latest attempt's.</summary>
    public void StartAttemptTimer(TimeSpan delay)
    {
        var timer = CancellationTokenSource.CreateLinkedTokenSource(_connected.Token);
        Interlocked.Exchange(ref _attemptTimer, timer)?.Cancel();
        Run(TimerAsync(delay, Input.NewAttemptTimerFired(generation), timer.Token));
    }

    /// <summary>
    /// Runs a TLS client handshake on the connected peer (at connect, or <c>starttls</c> later): stops the
    /// plain reader, delivers what the peer sent before, then reports <c>Secured</c> (and pumps the
    /// plaintext) with what the certificate presents, <c>SecureFailed</c> in words, or <c>SecureTimedOut</c>.
    /// </summary>
    public void StartSecure(string serverName, TlsTrust trust, TimeSpan timeout) =>
        Run(SecureAsync(serverName, trust, timeout));

    public void StartWrite(ReadOnlyMemory<byte> bytes)
    {
        PeerPump? pump;
        lock (_gate) pump = _pump;
        // Only a closed connection has no pump to write with; say so (the core ignores it if stale).
        Run(pump is null ? PostAsync(Input.NewSocketFailed(generation, "the connection is closed")).AsTask() : pump.WriteAsync(bytes, _cancel.Token));
    }

    /// <summary>Sends FIN; reading goes on until the peer closes.</summary>
    public void ShutdownSend()
    {
        PeerPump? pump;
        lock (_gate) pump = _pump;
        pump?.ShutdownSend();
    }

    /// <summary>
    /// Runs one of this connection's tasks. Each handles the failures it expects and reports them as
    /// inputs; anything else is a bug of ours: logged once, and the session ends with code 1.
    /// </summary>
    private async void Run(Task task)
    {
        try
        {
            await task;
        }
        catch (Exception e)
        {
            log.LogError(e, "connection {Generation} failed unexpectedly", generation);
            await PostAsync(Input.NewHostFault("the server hit an internal error (it is in the server's log)"));
        }
    }

    private async Task ResolveAsync(string host)
    {
        Input outcome;
        try
        {
            var addresses = await Dns.GetHostAddressesAsync(host, _cancel.Token);
            outcome = Input.NewResolved(generation, ListModule.OfArray(addresses));
        }
        catch (SocketException)
        {
            outcome = Input.NewResolveFailed(generation);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        await PostAsync(outcome);
    }

    /// <summary>Opens the SSH half of a tunnel, then dials its forward like any peer. Failures come in plain words, never with secrets.</summary>
    private async Task TunnelAsync(IPEndPoint server, SshLogin login, string host, Port port, SshLogins sessions, IPAddress client)
    {
        SshTunnel tunnel;
        try
        {
            tunnel = await SshTunnel.OpenAsync(sessions, client, server, login, host, port,
                () => _ = PostAsync(Input.NewSocketFailed(generation, $"the SSH server refused the channel to {host}:{port.Value}")));
        }
        catch (SocketException e)
        {
            // The SSH server itself could not be reached: the same words as a direct connect's.
            await PostAsync(Input.NewDialFailedWith(generation, SocketWords.DialError(e.SocketErrorCode)));
            return;
        }
        catch (Exception e) when (SshTunnel.Failure(e, login) is { } reason)
        {
            await PostAsync(Input.NewDialFailedWith(generation, DialError.NewTunnelFailed(reason)));
            return;
        }
        lock (_gate)
        {
            if (!_disposed) _tunnel = tunnel;
        }
        if (_tunnel != tunnel)
        {
            tunnel.Dispose(); // closed while logging in
            return;
        }
        await DialAsync(tunnel.Endpoint, tunnel.Door);
    }

    /// <summary>
    /// One connection attempt. Several may run at once (happy eyeballs): the first to connect wins
    /// and is reported; the others are cancelled and closed, and nothing of them is reported.
    /// </summary>
    /// <param name="endpoint">Where to connect.</param>
    /// <param name="door">For a tunnel's forward: the socket is bound first, so the door knows it by its source port.</param>
    private async Task DialAsync(IPEndPoint endpoint, ForwardDoor? door)
    {
        Socket? socket = null;
        try
        {
            socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            if (door is not null)
            {
                socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                door.Expect(((IPEndPoint)socket.LocalEndPoint!).Port);
            }
        }
        catch (SocketException e)
        {
            // Out of file descriptors, say: the connect fails in words ("too many open files"), the session goes on.
            socket?.Dispose();
            if (!_connected.IsCancellationRequested) await PostAsync(Input.NewDialFailedWith(generation, SocketWords.DialError(e.SocketErrorCode)));
            return;
        }
        lock (_gate)
        {
            if (_disposed)
            {
                socket.Dispose();
                return;
            }
            _attempts.Add(socket);
        }
        try
        {
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(_cancel.Token, _connected.Token);
            await socket.ConnectAsync(endpoint, attempt.Token);
        }
        catch (SocketException e)
        {
            Abandon(socket);
            if (!_connected.IsCancellationRequested) await PostAsync(Input.NewDialFailedWith(generation, SocketWords.DialError(e.SocketErrorCode)));
            return;
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            Abandon(socket);
            return;
        }
        // The connector's part: a plain TCP peer (a TLS connector would wrap the stream here).
        var peer = PeerStream.Plain(socket);
        PeerPump? pump = null;
        lock (_gate)
        {
            _attempts.Remove(socket);
            if (!_disposed && _peer is null)
            {
                _peer = peer;
                _pump = pump = new PeerPump(generation, peer, PostAsync);
            }
        }
        if (pump is null)
        {
            peer.Dispose(); // another attempt won, or the connection was closed meanwhile
            return;
        }
        _connected.Cancel();
        await PostAsync(Input.NewDialled(generation));
        StartReading(pump);
    }

    private void StartReading(PeerPump pump)
    {
        var stop = CancellationTokenSource.CreateLinkedTokenSource(_cancel.Token);
        Task reading;
        lock (_gate)
        {
            if (_securing || _disposed) return;
            // Registered before any read is issued, so a handshake that starts now can stop it first.
            _readStop = stop;
            _reading = reading = ReadAfterYieldAsync(pump, stop.Token);
        }
        Run(reading);
    }

    /// <summary>The pump's loop, begun outside the lock that registered it.</summary>
    private static async Task ReadAfterYieldAsync(PeerPump pump, CancellationToken stop)
    {
        await Task.Yield();
        await pump.ReadAsync(stop);
    }

    private async Task SecureAsync(string serverName, TlsTrust trust, TimeSpan timeout)
    {
        PeerStream? peer;
        CancellationTokenSource? readStop;
        Task? reading;
        lock (_gate)
        {
            _securing = true;
            (peer, readStop, reading) = (_peer, _readStop, _reading);
            _pump = null; // nothing is written during the handshake (the core queues requests behind it)
        }
        if (peer is null)
        {
            await PostAsync(Input.NewSecureFailed(generation, "the connection is closed"));
            return;
        }
        // Stop the plain reader without losing a byte: a cancelled receive takes nothing, and what it
        // read before has gone to the session already, ahead of the outcome posted below.
        readStop?.Cancel();
        if (reading is not null) await reading;
        // What the peer sent that nobody read yet (its go-ahead, right before the handshake) goes first too.
        if (!await DeliverUnreadAsync(peer.Socket)) return;
        SslStream tls;
        PeerCertificate certificate;
        try
        {
            using var limit = new CancellationTokenSource(timeout, time);
            using var either = CancellationTokenSource.CreateLinkedTokenSource(_cancel.Token, limit.Token);
            (tls, certificate) = await trust.HandshakeAsync(peer.Stream, serverName, either.Token);
        }
        catch (TlsRefusedException e)
        {
            await PostAsync(Input.NewSecureFailed(generation, e.Message));
            return;
        }
        catch (OperationCanceledException) when (!_cancel.IsCancellationRequested)
        {
            await PostAsync(Input.NewSecureTimedOut(generation, (int)Math.Round(timeout.TotalSeconds)));
            return;
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            return; // closed meanwhile
        }
        var secured = peer.Secured(tls);
        PeerPump? pump = null;
        lock (_gate)
        {
            if (!_disposed)
            {
                _securing = false;
                _peer = secured;
                _pump = pump = new PeerPump(generation, secured, PostAsync);
            }
        }
        if (pump is null)
        {
            await tls.DisposeAsync();
            return;
        }
        await PostAsync(Input.NewSecured(generation, certificate));
        StartReading(pump);
    }

    /// <summary>Posts the bytes waiting unread in the socket, if any; false once the session is finished.</summary>
    private async ValueTask<bool> DeliverUnreadAsync(Socket socket)
    {
        int available;
        try
        {
            available = socket.Available;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return true; // broken or closed: the handshake says so in words
        }
        if (available == 0) return true;
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(available);
        int read;
        try
        {
            read = socket.Receive(buffer, 0, available, SocketFlags.None);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
            return true;
        }
        // The session returns the pooled buffer once the core has relayed it.
        if (read > 0 && await PostAsync(Input.NewReceived(generation, new ReadOnlyMemory<byte>(buffer, 0, read)))) return true;
        System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        return read == 0;
    }

    /// <summary>An attempt that failed or was cancelled: no longer owned, closed.</summary>
    private void Abandon(Socket socket)
    {
        lock (_gate) _attempts.Remove(socket);
        socket.Dispose();
    }

    /// <summary>Posts <paramref name="fired"/> after <paramref name="delay"/>, unless stopped or the connection is closed first.</summary>
    private async Task TimerAsync(TimeSpan delay, Input fired, CancellationToken stop)
    {
        try
        {
            using var either = CancellationTokenSource.CreateLinkedTokenSource(_cancel.Token, stop);
            await Task.Delay(delay, time, either.Token);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        await PostAsync(fired);
    }

    /// <summary>Hands an input to the session; false once this connection or the session is finished.</summary>
    private async ValueTask<bool> PostAsync(Input input)
    {
        try
        {
            await inputs.WriteAsync(input, _cancel.Token);
            return true;
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        PeerStream? peer;
        Socket[] attempts;
        SshTunnel? tunnel;
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            (peer, attempts, tunnel) = (_peer, [.. _attempts], _tunnel);
            _attempts.Clear();
            _pump = null;
        }
        _cancel.Cancel();
        peer?.Dispose();
        foreach (var attempt in attempts) attempt.Dispose();
        tunnel?.Dispose();
    }
}
