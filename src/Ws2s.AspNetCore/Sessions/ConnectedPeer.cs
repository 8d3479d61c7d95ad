using System.Buffers;
using System.Net.Sockets;
using Ws2s.AspNetCore.Connectors;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Sessions;

/// <summary>
/// The peer of a connection once an attempt has won: its stream pumped by a <see cref="PeerPump"/>, and
/// handed over whole to the TLS step when the core asks (the plain reader is stopped first, under the lock
/// that starts readers, so a handshake never races it; what the peer sent before goes to the session first).
/// </summary>
internal sealed class ConnectedPeer(PeerStream stream, GenerationInputs inputs, CancellationToken closed) : IDisposable
{
    private readonly Lock _gate = new();
    private PeerStream _stream = stream;
    /// <summary>The connector's stream is the socket's own (<see cref="PeerStream.Of"/>), not an application's wrapper.</summary>
    private readonly bool _overOwnStream = stream.Stream.GetType() == typeof(NetworkStream);
    private PeerPump? _pump = new(inputs, stream);
    /// <summary>Sends what the core writes; none while the TLS step has the stream.</summary>
    private PeerWriter? _writer = new(inputs, stream);
    private Task? _reading;
    private CancellationTokenSource? _readStop;
    /// <summary>
    /// The TLS step has begun (or finished): the plain reader may not start any more. The dial starts it after posting
    /// <c>Dialled</c>, and a session that asks for TLS at once may have finished the handshake by then: a late start
    /// would have been a second reader on the secured stream beside the one the TLS step starts.
    /// </summary>
    private bool _tlsBegun;
    private bool _disposed;

    /// <summary>Starts the plain reader (the dial's winner calls it), unless the TLS step has begun.</summary>
    public void StartReading() => Start(plain: true);

    /// <summary>Starts the reader of the stream in place: one at a time, and a plain one never after the TLS step began.</summary>
    private void Start(bool plain)
    {
        // Over ws2s's own socket, closing ends the read by shutting the socket down (see Dispose): the read's token only
        // stops it for a TLS handshake. Under another stream, closing cancels the read.
        var stop = _overOwnStream ? new CancellationTokenSource() : CancellationTokenSource.CreateLinkedTokenSource(closed);
        lock (_gate)
        {
            if ((plain && _tlsBegun) || _disposed || _pump is not { } pump || _reading is { IsCompleted: false })
            {
                stop.Dispose();
                return;
            }
            // Registered before any read is issued, so a handshake that starts now can stop it first.
            _readStop = stop;
            // Relaying over the socket's own stream (or ws2s's TLS over it, which refuses renegotiation): the pump's
            // completions run inline (the session's work on them never blocks). Not under an application connector's
            // stream: its code would run there too.
            if (_overOwnStream) InlineCompletions.Prefer(_stream.Socket, inline: true);
            _reading = pump.ReadAsync(stop.Token); // it reports its own failures (a watching task would be one more object per stream)
        }
    }

    public void Write(ReadOnlyMemory<byte> bytes)
    {
        PeerWriter? writer;
        lock (_gate) writer = _writer;
        // Only a closed connection has nothing to write with; say so (the core ignores it if stale).
        if (writer is null) inputs.Run(inputs.PostAsync(Input.NewSocketFailed(inputs.Generation, "the connection is closed")).AsTask());
        else writer.Write(bytes);
    }

    /// <summary>Sends FIN once what was written has gone; reading goes on until the peer closes.</summary>
    public void ShutdownSend()
    {
        PeerWriter? writer;
        lock (_gate) writer = _writer;
        writer?.ShutdownSend();
    }

    /// <summary>
    /// Runs the TLS step on the peer: stops the plain reader, delivers what the peer sent before, then
    /// reports <c>Secured</c> (and pumps the plaintext) or <c>SecureFailed</c> in words. It has no time limit of its own: the core
    /// closes the connection when the handshake's deadline passes, which ends it.
    /// </summary>
    public async Task SecureAsync(string serverName, TlsUpgrade tls)
    {
        // Off the session's thread (it may be a socket's event thread): the handshake's certificate checks may block.
        await Task.Yield();
        var generation = inputs.Generation;
        PeerStream plain;
        CancellationTokenSource? readStop;
        Task? reading;
        PeerWriter? writer;
        lock (_gate)
        {
            _tlsBegun = true;
            (plain, readStop, reading, writer) = (_stream, _readStop, _reading, _writer);
            _pump = null;
            _writer = null; // nothing is written during the handshake (the core queues requests behind it)
        }
        // What was written before (a STARTTLS command) goes first.
        try
        {
            if (writer is not null) await writer.DrainedAsync().WaitAsync(closed);
        }
        catch (OperationCanceledException)
        {
            return; // closed meanwhile
        }
        // Stop the plain reader without losing a byte: a cancelled receive takes nothing, and what it
        // read before has gone to the session already, ahead of the outcome posted below.
        readStop?.Cancel();
        if (reading is not null) await reading;
        InlineCompletions.Prefer(plain.Socket, inline: false); // the handshake's continuations go to the thread pool
        // What the peer sent that nobody read yet (its go-ahead, right before the handshake) goes first too.
        if (plain.Socket is { } socket && !await DeliverUnreadAsync(socket)) return;
        PeerStream secured;
        PeerCertificate certificate;
        try
        {
            (secured, certificate) = await tls.SecureAsync(plain, serverName, closed);
        }
        catch (TlsRefusedException e)
        {
            await inputs.PostAsync(Input.NewSecureFailed(generation, e.Message));
            return;
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            return; // closed meanwhile
        }
        var installed = false;
        lock (_gate)
        {
            if (!_disposed)
            {
                _stream = secured;
                _pump = new PeerPump(inputs, secured);
                _writer = new PeerWriter(inputs, secured);
                installed = true;
            }
        }
        if (!installed)
        {
            await secured.Stream.DisposeAsync();
            return;
        }
        await inputs.PostAsync(Input.NewSecured(generation, certificate));
        Start(plain: false);
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
        var buffer = ArrayPool<byte>.Shared.Rent(available);
        int read;
        try
        {
            read = socket.Receive(buffer, 0, available, SocketFlags.None);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            return true;
        }
        // The session returns the pooled buffer (and the read ticket) once the core has relayed it.
        if (read > 0 && await inputs.RoomAsync())
        {
            if (await inputs.PostAsync(Input.NewReceived(inputs.Generation, new ReadOnlyMemory<byte>(buffer, 0, read)))) return true;
            inputs.GiveBack();
        }
        ArrayPool<byte>.Shared.Return(buffer);
        return read == 0;
    }

    /// <summary>
    /// Closes the peer. A read still waiting on ws2s's own socket is ended by shutting the socket's receiving side down: the
    /// read then sees the end on the socket's event thread, as any end, and the socket is closed once it has (a FIN, or a
    /// reset when the peer's bytes were left unread, as a plain close sends: the peer learns they were thrown away). Cancelling or closing under
    /// a waiting read would end it through the thread pool (the runtime queues every aborted socket operation there), and
    /// on a Wisp connection that opens and closes streams fast, that pool work and the pool's threads spinning after it
    /// took about half of the server's CPU.
    /// </summary>
    public void Dispose()
    {
        PeerStream stream;
        Task? reading;
        PeerWriter? writer;
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _pump = null;
            (stream, reading, writer, _writer) = (_stream, _reading, _writer, null);
        }
        // What the core heard written still goes to the peer (for a while at most), and FIN after it.
        var sent = writer?.CloseAsync() ?? Task.CompletedTask;
        if (!sent.IsCompleted) sent = LingerAsync(writer!, sent); // then disposed under a send that still waits
        if (_overOwnStream && reading is { IsCompleted: false } && stream.Socket is { } socket && TryShutdown(socket))
            DisposeAfter(sent.IsCompleted ? reading : Task.WhenAll(reading, sent), stream);
        else if (!sent.IsCompleted)
            DisposeAfter(sent, stream);
        else
            stream.Dispose();
    }

    /// <summary>How long a closed connection may take to send what it was given before its stream is disposed under the send.</summary>
    internal static readonly TimeSpan Linger = TimeSpan.FromSeconds(10);

    private static async Task LingerAsync(PeerWriter writer, Task sent)
    {
        try
        {
            await sent.WaitAsync(Linger);
        }
        catch (TimeoutException)
        {
            writer.Forget();
        }
    }

    private static void DisposeAfter(Task task, PeerStream stream) =>
        task.ContinueWith(static (done, peer) =>
        {
            _ = done.Exception; // a linger that ran out (TimeoutException): seen, and nothing more to do about it
            ((PeerStream)peer!).Dispose();
        }, stream, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    private static bool TryShutdown(Socket socket)
    {
        try
        {
            socket.Shutdown(SocketShutdown.Receive);
            return true;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return false; // already broken: closing it now ends the read
        }
    }
}
