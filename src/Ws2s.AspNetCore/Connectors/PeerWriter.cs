using Ws2s.AspNetCore.Sessions;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Connectors;

/// <summary>
/// The sending side of one connected peer: the core's writes, sent behind its back. A write is copied and reported done at
/// once (<c>WriteCompleted</c>), and what a turn of the session wrote goes to the peer in one send when the turn ends
/// (<see cref="WriteBehind"/>): a client read of many small Wisp DATA packets costs each peer one send, not one per packet (a
/// send each was half of ws2s's syscalls under the wisp-js client). While a send is in flight, a write's completion waits
/// for it, so the core queues behind a slow peer as before; what this holds is the send in flight and one write more,
/// counted in the server-wide queue budget. Done means taken: a close or FIN comes after every byte taken
/// (<see cref="CloseAsync"/>). A datagram peer (UDP) sends each write as it comes: datagrams are never merged.
/// </summary>
internal sealed class PeerWriter(GenerationInputs inputs, PeerStream peer)
{
    /// <summary>Held bytes past this go at once, without waiting for the turn to end.</summary>
    private const int SendAtBytes = 64 * 1024;

    /// <summary>A write this large, with nothing held or in flight, is sent as it is, without a copy.</summary>
    private const int DirectBytes = 32 * 1024;
    private readonly bool _datagrams = peer.Stream is DatagramStream;
    private readonly Lock _gate = new();
    /// <summary>Bytes taken and not yet sent.</summary>
    private PooledBufferWriter? _held;
    private PooledBufferWriter? _spare;
    private int _heldBytes;
    /// <summary>Bytes this writer counts in the server-wide queue budget (taken, not yet sent), until sent, dropped or forgotten.</summary>
    private int _accounted;
    /// <summary>A send is in flight (<see cref="SendAsync"/> runs): it takes what is held when it is done.</summary>
    private bool _sending;
    /// <summary>A send failed: nothing more goes to this peer (the session has heard why).</summary>
    private bool _broken;
    /// <summary>A write taken while a send was in flight: its <c>WriteCompleted</c> waits for that send.</summary>
    private bool _owed;
    /// <summary>Waiting for the end of the turn (in the session's <see cref="WriteBehind"/>).</summary>
    private bool _waitingForTurn;
    /// <summary>The sending side shuts down (FIN) once everything held has gone.</summary>
    private bool _finAfter;
    /// <summary>Completed once nothing is held or in flight (or the peer broke): a TLS step or a close waits for it.</summary>
    private TaskCompletionSource? _drained;

    /// <summary>Takes bytes for the peer (the core lends them only for its step: they are copied).</summary>
    public void Write(ReadOnlyMemory<byte> bytes)
    {
        if (_datagrams)
        {
            inputs.Run(WriteDatagramAsync(bytes)); // the core keeps the datagram until it hears WriteCompleted
            return;
        }
        bool direct;
        lock (_gate)
        {
            // A large write with nothing before it goes as it is (a copy would cost more than the send it saves), and is done
            // when sent; what comes meanwhile waits for it, as behind any send in flight.
            direct = !_sending && _heldBytes == 0 && bytes.Length >= DirectBytes;
            _sending |= direct;
        }
        if (direct)
        {
            inputs.Run(SendAsync(bytes));
            return;
        }
        bool done, sendNow;
        lock (_gate)
        {
            if (_broken) return; // the session has heard why: nothing more goes, and nothing is kept
            _accounted += bytes.Length;
            _held ??= new PooledBufferWriter();
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
        inputs.Writes?.Account(bytes.Length);
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

    /// <summary>Sends FIN once what was taken has gone; reading goes on until the peer closes.</summary>
    public void ShutdownSend()
    {
        bool now, send = false;
        lock (_gate)
        {
            now = !_sending && _heldBytes == 0;
            if (!now)
            {
                _finAfter = true;
                send = !_sending;
                _sending = true;
            }
        }
        if (now) Shutdown();
        else if (send) inputs.Run(SendAsync());
    }

    /// <summary>Completes once nothing is held or in flight (before a TLS handshake takes the stream over), or the peer broke.</summary>
    public Task DrainedAsync()
    {
        bool send;
        Task drained;
        lock (_gate)
        {
            if (_broken || (!_sending && _heldBytes == 0)) return Task.CompletedTask;
            drained = (_drained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
            send = !_sending;
            _sending = true;
        }
        if (send) inputs.Run(SendAsync());
        return drained;
    }

    /// <summary>
    /// The connection closes: what was taken is still sent (the core heard it done). The task completes once it has gone or
    /// the peer broke; the stream is disposed then, or after <see cref="Sessions.ConnectedPeer.Linger"/>, which ends a send still waiting.
    /// </summary>
    public Task CloseAsync() => DrainedAsync();

    /// <param name="first">A write sent as it is before what is held (<see cref="DirectBytes"/>), and done once sent.</param>
    private async Task SendAsync(ReadOnlyMemory<byte> first = default)
    {
        try
        {
            if (!first.IsEmpty)
            {
                // Then an empty send: the socket's cached send operation keeps a reference to the last buffer it sent, and
                // this one is the core's, so a session gone quiet would keep (say) its last 64 KiB sendb payload alive.
                if (!await SentAsync(first, owed: false) || !await SentAsync(ReadOnlyMemory<byte>.Empty, owed: false)) return;
                await inputs.PostAsync(Input.NewWriteCompleted(inputs.Generation));
            }
            while (true)
            {
                PooledBufferWriter? batch = null;
                TaskCompletionSource? drained = null;
                bool owed, fin = false;
                lock (_gate)
                {
                    (owed, _owed) = (_owed, false);
                    if (_heldBytes == 0) (_sending, fin, _finAfter, drained, _drained) = (false, _finAfter, false, _drained, null);
                    else (batch, _held, _spare, _heldBytes) = (_held!, _spare ?? new PooledBufferWriter(), _held, 0);
                }
                if (batch is null)
                {
                    if (owed) await inputs.PostAsync(Input.NewWriteCompleted(inputs.Generation)); // an empty write waited
                    if (fin) Shutdown();
                    drained?.TrySetResult();
                    return;
                }
                var length = batch.WrittenMemory.Length;
                var sent = await SentAsync(batch.WrittenMemory, owed);
                batch.Clear(); // the send is over (done, failed or ended): its array goes back to the pool
                Release(length);
                if (!sent) return;
            }
        }
        catch
        {
            Break(); // a bug of ours or of an application's stream: the session hears it as a fault (GenerationInputs.Run)
            throw;
        }
    }

    /// <summary>One send to the peer; <paramref name="owed"/>: a write in it waits for its completion, said once it is on its way. False: it failed.</summary>
    private async Task<bool> SentAsync(ReadOnlyMemory<byte> bytes, bool owed)
    {
        try
        {
            var sending = peer.Stream.WriteAsync(bytes, CancellationToken.None);
            if (owed) await inputs.PostAsync(Input.NewWriteCompleted(inputs.Generation));
            await sending;
            return true;
        }
        catch (IOException e)
        {
            await inputs.PostAsync(Input.NewSocketFailed(inputs.Generation, SocketWords.Of(e)));
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
        }
        Break();
        return false;
    }

    /// <summary>A send failed: nothing more goes, what is held is dropped (and leaves the budget), and a wait for the drain ends.</summary>
    private void Break()
    {
        int dropped;
        TaskCompletionSource? drained;
        lock (_gate)
        {
            (_broken, dropped, _heldBytes, drained, _drained) = (true, _heldBytes, 0, _drained, null);
            _held?.Clear();
        }
        Release(dropped);
        drained?.TrySetResult();
    }

    /// <summary>Bytes sent or dropped leave the queue budget (never more than this writer put in).</summary>
    private void Release(int bytes)
    {
        int released;
        lock (_gate)
        {
            released = Math.Min(bytes, _accounted);
            _accounted -= released;
        }
        if (released > 0) inputs.Writes?.Account(-released);
    }

    /// <summary>A closed connection's linger has run out: its bytes leave the budget now, whatever becomes of the send.</summary>
    public void Forget() => Release(int.MaxValue);

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
        if (await SentAsync(datagram, owed: false)) await inputs.PostAsync(Input.NewWriteCompleted(inputs.Generation));
    }
}
