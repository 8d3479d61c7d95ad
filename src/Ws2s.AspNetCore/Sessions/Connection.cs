using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.FSharp.Collections;
using Renci.SshNet;
using Renci.SshNet.Common;
using Ws2s.AspNetCore.Ssh;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Sessions;

/// <summary>
/// One generation of a session's TCP connection: its resolve, dial, connect timer, reader and writer.
/// Everything it learns goes back to the session as an <see cref="Input"/> tagged with its generation;
/// disposing it cancels all of that, so nothing of it is heard again.
/// </summary>
internal sealed class Connection(long generation, ChannelWriter<Input> inputs, ILogger log) : IDisposable
{
    /// <summary>The most a single read takes from the peer: one <c>recv data</c> message.</summary>
    public const int ReadChunkBytes = 64 * 1024;

    private readonly CancellationTokenSource _cancel = new();
    /// <summary>Stops the connect timer once connected (the core would ignore it; this frees it early).</summary>
    private readonly CancellationTokenSource _connected = new();
    private CancellationTokenSource? _attemptTimer;

    /// <summary>
    /// Guards what this connection owns: whatever a dial or a tunnel acquires is handed over under it,
    /// and once <see cref="Dispose"/> has run, anything acquired later is released at once, never kept.
    /// </summary>
    private readonly Lock _gate = new();
    private bool _disposed;
    /// <summary>The connected socket, once an attempt has won.</summary>
    private Socket? _socket;
    /// <summary>Connection attempts in flight.</summary>
    private readonly List<Socket> _attempts = [];
    private SshSessions.Lease? _ssh;
    private ForwardedPortLocal? _forward;

    public long Generation => generation;

    public void StartResolve(string host) => Run(ResolveAsync(host));

    public void StartDial(IPEndPoint endpoint) => Run(DialAsync(endpoint));

    public void StartTimer(int seconds) => Run(TimerAsync(seconds));

    public void StartTunnel(IPEndPoint server, SshLogin login, Protocol.Host host, Port port, SshSessions sessions, IPAddress client) =>
        Run(TunnelAsync(server, login, host.Canonical, port, sessions, client));

    public void StartWrite(ReadOnlyMemory<byte> bytes) => Run(WriteAsync(bytes));

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

    /// <summary>Sends FIN; reading goes on until the peer closes.</summary>
    public void ShutdownSend()
    {
        try
        {
            _socket?.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already broken (the reader reports it) or closed.
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

    /// <summary>
    /// Takes an SSH session to the server (shared with this client's other tunnels over the same login),
    /// opens a forward from a loopback port to host:port there (SSH.NET has no public direct-tcpip
    /// stream, so the channel is reached through ForwardedPortLocal), then dials that port like any
    /// connection. Failures are reported in plain words, never with secrets.
    /// </summary>
    private async Task TunnelAsync(IPEndPoint server, SshLogin login, string host, Port port, SshSessions sessions, IPAddress client)
    {
        try
        {
            var lease = await sessions.AcquireAsync(client, server, login);
            lock (_gate)
            {
                if (!_disposed) _ssh = lease;
            }
            if (_ssh != lease)
            {
                lease.Dispose(); // closed while logging in
                return;
            }
            var forward = new ForwardedPortLocal("127.0.0.1", 0, host, (uint)port.Value);
            var door = new ForwardDoor();
            forward.RequestReceived += (_, e) => door.Admit(e.OriginatorHost, e.OriginatorPort);
            forward.Exception += (_, e) =>
            {
                if (e.Exception is not ForwardDoor.StrangerException)
                    _ = PostAsync(Input.NewSocketFailed(generation, $"the SSH server refused the channel to {host}:{port.Value}"));
            };
            lease.Client.AddForwardedPort(forward);
            forward.Start();
            lock (_gate)
            {
                if (!_disposed) _forward = forward;
            }
            if (_forward != forward)
            {
                // Closed while the forward started: Dispose released the lease without it.
                _ = Task.Run(() => StopForward(lease, forward));
                return;
            }
            await DialAsync(new IPEndPoint(IPAddress.Loopback, (int)forward.BoundPort), door);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
        }
        catch (SocketException e)
        {
            await ReportUnreachableAsync(e);
        }
        catch (Exception e) when (e is SshException or ProxyException or SshSessions.RefusedException)
        {
            var reason = e switch
            {
                SshAuthenticationException => $"authentication failed for user {login.Username} (wrong password or key)",
                SshOperationTimeoutException => "the SSH server did not answer in time",
                SshSessions.RefusedException => e.Message,
                _ => "the SSH session failed: " + e.Message,
            };
            await PostAsync(Input.NewDialFailedWith(generation, DialError.NewTunnelFailed(reason)));
        }
    }

    /// <summary>Stops a forward (which waits for its channel) and removes it from its SSH session.</summary>
    private static void StopForward(SshSessions.Lease ssh, ForwardedPortLocal forward)
    {
        try
        {
            forward.Dispose();
            ssh.Client.RemoveForwardedPort(forward);
        }
        catch (Exception e) when (e is SshException or ObjectDisposedException or SocketException or InvalidOperationException)
        {
            // The SSH session is gone already.
        }
    }

    /// <summary>The SSH server itself could not be reached: the same words as a direct connect's.</summary>
    private Task ReportUnreachableAsync(SocketException e) => PostAsync(Input.NewDialFailedWith(generation, DialErrorOf(e.SocketErrorCode))).AsTask();

    /// <summary>
    /// One connection attempt. Several may run at once (happy eyeballs): the first to connect wins
    /// and is reported; the others are cancelled and closed, and nothing of them is reported.
    /// </summary>
    /// <param name="endpoint">Where to connect.</param>
    /// <param name="door">For a tunnel's local forward: the socket is bound first, so the door knows it by its source port.</param>
    private async Task DialAsync(IPEndPoint endpoint, ForwardDoor? door = null)
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
            if (!_connected.IsCancellationRequested)
                await PostAsync(Input.NewDialFailedWith(generation, DialErrorOf(e.SocketErrorCode)));
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
            if (!_connected.IsCancellationRequested)
                await PostAsync(Input.NewDialFailedWith(generation, DialErrorOf(e.SocketErrorCode)));
            return;
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            Abandon(socket);
            return;
        }
        bool won;
        lock (_gate)
        {
            _attempts.Remove(socket);
            won = !_disposed && _socket is null;
            if (won) _socket = socket;
        }
        if (!won)
        {
            socket.Dispose(); // another attempt won, or the connection was closed meanwhile
            return;
        }
        _connected.Cancel();
        await PostAsync(Input.NewDialled(generation));
        Run(ReadAsync(socket));
    }

    /// <summary>An attempt that failed or was cancelled: no longer owned, closed.</summary>
    private void Abandon(Socket socket)
    {
        lock (_gate) _attempts.Remove(socket);
        socket.Dispose();
    }

    /// <summary>RFC 8305's connection attempt delay: the next attempt starts if none finished by then.</summary>
    private static readonly TimeSpan AttemptDelay = TimeSpan.FromMilliseconds(250);

    /// <summary>(Re)starts the attempt timer: one per connection, the latest attempt's.</summary>
    public void StartAttemptTimer()
    {
        var timer = new CancellationTokenSource();
        Interlocked.Exchange(ref _attemptTimer, timer)?.Cancel();
        Run(AttemptTimerAsync(timer.Token));
    }

    private async Task AttemptTimerAsync(CancellationToken restarted)
    {
        try
        {
            using var either = CancellationTokenSource.CreateLinkedTokenSource(_cancel.Token, _connected.Token, restarted);
            await Task.Delay(AttemptDelay, either.Token);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        await PostAsync(Input.NewAttemptTimerFired(generation));
    }

    /// <summary>
    /// Reads until the peer finishes. When the last read did not fill the buffer (the peer may go
    /// quiet), it first waits with a zero-byte read so an idle connection pins no buffer; then it takes
    /// what is there into a pooled buffer that the session returns once it has relayed it. The
    /// bounded input channel makes this wait while the client is slow: TCP flow control does the rest.
    /// </summary>
    private async Task ReadAsync(Socket socket)
    {
        try
        {
            var mayBeIdle = true;
            while (true)
            {
                if (mayBeIdle) await socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None, _cancel.Token);
                var buffer = ArrayPool<byte>.Shared.Rent(ReadChunkBytes);
                int read;
                try
                {
                    read = await socket.ReceiveAsync(buffer.AsMemory(0, ReadChunkBytes), SocketFlags.None, _cancel.Token);
                }
                catch
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    throw;
                }
                if (read == 0)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    await PostAsync(Input.NewPeerFinished(generation));
                    return;
                }
                mayBeIdle = read < ReadChunkBytes;
                if (!await PostAsync(Input.NewReceived(generation, new ReadOnlyMemory<byte>(buffer, 0, read))))
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    return;
                }
            }
        }
        catch (SocketException e)
        {
            await PostAsync(Input.NewSocketFailed(generation, Words(e.SocketErrorCode)));
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    private async Task WriteAsync(ReadOnlyMemory<byte> bytes)
    {
        Socket? socket;
        lock (_gate) socket = _socket;
        if (socket is null)
        {
            // Only a closed connection has no socket to write to; say so, the core ignores it if stale.
            await PostAsync(Input.NewSocketFailed(generation, "the connection is closed"));
            return;
        }
        try
        {
            while (!bytes.IsEmpty)
            {
                var sent = await socket.SendAsync(bytes, SocketFlags.None, _cancel.Token);
                bytes = bytes[sent..];
            }
        }
        catch (SocketException e)
        {
            await PostAsync(Input.NewSocketFailed(generation, Words(e.SocketErrorCode)));
            return;
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            return;
        }
        await PostAsync(Input.NewWriteCompleted(generation));
    }

    private async Task TimerAsync(int seconds)
    {
        try
        {
            using var either = CancellationTokenSource.CreateLinkedTokenSource(_cancel.Token, _connected.Token);
            await Task.Delay(TimeSpan.FromSeconds(seconds), either.Token);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        await PostAsync(Input.NewConnectTimerFired(generation));
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
        Socket? socket;
        Socket[] attempts;
        SshSessions.Lease? ssh;
        ForwardedPortLocal? forward;
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            (socket, attempts, ssh, forward) = (_socket, [.. _attempts], _ssh, _forward);
            _attempts.Clear();
        }
        _cancel.Cancel();
        socket?.Dispose();
        foreach (var attempt in attempts) attempt.Dispose();
        // Stopping a forward waits for its channel: off the session loop. Then the SSH session may close.
        if (ssh is not null)
            _ = Task.Run(() =>
            {
                if (forward is not null) StopForward(ssh, forward);
                ssh.Dispose();
            });
    }

    private static DialError DialErrorOf(SocketError error) => error switch
    {
        SocketError.ConnectionRefused => DialError.Refused,
        SocketError.NetworkUnreachable => DialError.NetworkUnreachable,
        SocketError.HostUnreachable => DialError.HostUnreachable,
        _ => DialError.NewDialFailed("connect failed: " + Words(error)),
    };

    /// <summary>A socket error in plain words: <c>ConnectionReset</c> → "connection reset".</summary>
    internal static string Words(SocketError error)
    {
        var name = error.ToString();
        var words = new System.Text.StringBuilder(name.Length + 4);
        foreach (var c in name)
        {
            if (char.IsUpper(c) && words.Length > 0) words.Append(' ');
            words.Append(char.ToLowerInvariant(c));
        }
        return words.ToString();
    }
}
