using Ws2s.AspNetCore.Sessions;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Connectors;

/// <summary>
/// The sending side of one connected peer: the core's writes, sent behind its back. A write is copied and reported done at
/// once (<c>WriteCompleted</c>), and what a turn of the session wrote goes to the peer in one send when the turn ends
/// (<see cref="WriteBehind"/>): a client read of many small Wisp DATA packets costs each peer one send, not one per packet (a
/// send each was half of ws2s's syscalls under the wisp-js client). While a send is in flight, a write's completion waits
/// for it, so the core queues behind a slow peer as before; what this holds is the send in flight and one write more.
/// A datagram peer (UDP) sends each write as it comes: datagrams are never merged.
/// </summary>
internal sealed class PeerWriter(GenerationInputs inputs, PeerStream peer, CancellationToken closed)
{
    /// <summary>Held bytes past this go at once, without waiting for the turn to end.</summary>
    private const int SendAtBytes = 64 * 1024;

    /// <summary>A write this large, with nothing held or in flight, is sent as it is, without a copy.</summary>
    private const int DirectBytes = 32 * 1024;

    private readonly bool _datagrams = peer.Stream is DatagramStream;
    private readonly Lock _gate = new();
    /// <summary>Bytes taken and not yet sent.</summary>
    private PooledBufferWriter _held = new();
    private PooledBufferWriter _spare = new();
    private int _heldBytes;
    /// <summary>A send is in flight (<see cref="SendAsync"/> runs): it takes what is held when it is done.</summary>
    private bool _sending;
    /// <summary>A write taken while a send was in flight: its <c>WriteCompleted</c> waits for that send.</summary>
    private bool _owed;
    /// <summary>Waiting for the end of the turn (in the session's <see cref="WriteBehind"/>).</summary>
    private bool _waitingForTurn;
    /// <summary>The sending side shuts down (FIN) once everything held has gone.</summary>
    private bool _finAfter;
    private TaskCompletionSource? _drained;

    /// <summary>Takes bytes for the peer (the core lends them only for its step: they are copied).</summary>
    public void Write(ReadOnlyMemory<byte> bytes)
    {
        if (_datagrams)
        {
            inputs.Run(WriteDatagramAsync(bytes.ToArray()));
            return;
        }
        bool done, sendNow;
        lock (_gate)
        {
            if (!_sending && _heldBytes == 0 && bytes.Length >= DirectBytes)
            {
                // A large write with nothing before it goes as it is (a copy would cost more than the send it saves), and is
                // done when sent; what comes meanwhile waits for it, as behind any send in flight.
                _sending = true;
                sendNow = true;
            }
            else sendNow = false;
        }
        if (sendNow)
        {
            inputs.Run(SendAsync(bytes));
            return;
        }
        lock (_gate)
        {
            bytes.Span.CopyTo(_held.GetSpan(bytes.Length));
            _held.Advance(bytes.Length);
            _heldBytes += bytes.Length;
            done = !_sending;
            _owed |= _sending;
            sendNow = done && (inputs.Writes is null || _heldBytes >= SendAtBytes);
            _sending |= sendNow;
            var waitForTurn = done && !sendNow && !_waitingForTurn;
            _waitingForTurn |= waitForTurn;
            if (waitForTurn) inputs.Writes!.Hold(this);
        }
        if (sendNow) inputs.Run(SendAsync());
        if (done && inputs.PostAsync(Input.NewWriteCompleted(inputs.Generation)) is { IsCompleted: false } posting) inputs.Run(posting.AsTask());
    }

    /// <summary>The session's turn has ended: what it wrote goes to the peer.</summary>
    public void TurnEnded()
    {
        lock (_gate)
        {
            _waitingForTurn = false;
            if (_sending || _heldBytes == 0) return;
            _sending = true;
        }
        inputs.Run(SendAsync());
    }

    /// <summary>Sends FIN once everything held has gone to the peer; reading goes on until the peer closes.</summary>
    public void ShutdownSend()
    {
        lock (_gate)
        {
            if (_sending || _heldBytes > 0)
            {
                _finAfter = true;
                if (_sending) return;
                _sending = true;
            }
        }
        if (_finAfter) inputs.Run(SendAsync());
        else Shutdown();
    }

    /// <summary>Completes once nothing is held or in flight (before a TLS handshake takes the stream over).</summary>
    public Task DrainedAsync()
    {
        lock (_gate)
        {
            if (!_sending && _heldBytes == 0) return Task.CompletedTask;
            _drained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (!_sending)
            {
                _sending = true;
                inputs.Run(SendAsync());
            }
            return _drained.Task;
        }
    }

    /// <summary>
    /// The connection closes: what is held is offered to the kernel once, without waiting (a send in flight is ended by the
    /// close, as it always was). Bytes the core saw written are not dropped while the socket has room for them.
    /// </summary>
    public void Close()
    {
        PooledBufferWriter held;
        lock (_gate)
        {
            if (_sending || _heldBytes == 0) return;
            (_sending, held, _heldBytes) = (true, _held, 0);
        }
        try
        {
            var sending = peer.Stream.WriteAsync(held.WrittenMemory, CancellationToken.None);
            if (sending.IsCompleted)
            {
                sending.GetAwaiter().GetResult();
                held.Clear();
            }
            else
            {
                // The stream's disposal ends it; its array is left to the GC, not given back to the pool while in use.
                _ = sending.AsTask().ContinueWith(static t => _ = t.Exception, CancellationToken.None,
                    TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException or OperationCanceledException)
        {
            // Broken already: nothing more to offer.
        }
    }

    /// <param name="first">A write sent as it is before what is held (<see cref="DirectBytes"/>), and done once sent.</param>
    private async Task SendAsync(ReadOnlyMemory<byte> first = default)
    {
        var fin = false;
        try
        {
            if (!first.IsEmpty)
            {
                try
                {
                    await peer.Stream.WriteAsync(first, closed);
                }
                catch (IOException e) when (!closed.IsCancellationRequested)
                {
                    await inputs.PostAsync(Input.NewSocketFailed(inputs.Generation, SocketWords.Of(e)));
                    return;
                }
                catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or IOException)
                {
                    return;
                }
                await inputs.PostAsync(Input.NewWriteCompleted(inputs.Generation));
            }
            while (true)
            {
                PooledBufferWriter batch;
                bool owed;
                lock (_gate)
                {
                    if (_heldBytes == 0)
                    {
                        (_sending, fin, _finAfter) = (false, _finAfter, false);
                        break;
                    }
                    (batch, _held, _spare, _heldBytes) = (_held, _spare, _held, 0);
                    (owed, _owed) = (_owed, false);
                }
                try
                {
                    var sending = peer.Stream.WriteAsync(batch.WrittenMemory, closed);
                    // The write that waited is in this batch, on its way: the core may hand over the next.
                    if (owed) await inputs.PostAsync(Input.NewWriteCompleted(inputs.Generation));
                    await sending;
                }
                catch (IOException e) when (!closed.IsCancellationRequested)
                {
                    await inputs.PostAsync(Input.NewSocketFailed(inputs.Generation, SocketWords.Of(e)));
                    return; // still "sending": nothing more goes to a broken peer
                }
                catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or IOException)
                {
                    return;
                }
                batch.Clear();
            }
            if (fin) Shutdown();
        }
        finally
        {
            TaskCompletionSource? drained;
            lock (_gate) (drained, _drained) = (_drained, null);
            drained?.TrySetResult();
        }
    }

    private void Shutdown()
    {
        try
        {
            peer.ShutdownSend();
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or ObjectDisposedException)
        {
            // Already broken (the reader reports it) or closed.
        }
    }

    /// <summary>One datagram, as it came.</summary>
    private async Task WriteDatagramAsync(ReadOnlyMemory<byte> datagram)
    {
        try
        {
            await peer.Stream.WriteAsync(datagram, closed);
        }
        catch (IOException e) when (!closed.IsCancellationRequested)
        {
            await inputs.PostAsync(Input.NewSocketFailed(inputs.Generation, SocketWords.Of(e)));
            return;
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or IOException)
        {
            return;
        }
        await inputs.PostAsync(Input.NewWriteCompleted(inputs.Generation));
    }
}
