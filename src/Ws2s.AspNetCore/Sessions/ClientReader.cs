using System.Buffers;
using System.Net.WebSockets;
using System.Threading.Channels;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Sessions;

/// <summary>
/// Reads one session's client messages, whole and one at a time, each only once the session has
/// granted it, and posts each as an input. A message over the size limit is reported as such, and each wait for more
/// of a message begun as progress (the core decides when a message has stalled, and every close). Once the session drains, it reads and
/// discards until the client's close frame: closing TCP with unread input would make the kernel reset
/// the connection, and the client could lose our close frame.
/// </summary>
/// <remarks>
/// <paramref name="idle"/> is called whenever the reader is about to wait (for the client, or for a grant): the session's
/// turn may end then (see <see cref="Busy"/>).
/// </remarks>
internal sealed class ClientReader(WebSocket client, int maxMessageBytes, ChannelWriter<Input> inputs, ILogger log, Action? idle = null)
{
    /// <summary>One credit: the next message may be read.</summary>
    private readonly SemaphoreSlim _granted = new(1, 1);

    private volatile bool _busy;

    /// <summary>Waiting for a grant: a grant now wakes the reader on the thread pool, not at once, so it is not busy yet.</summary>
    private volatile bool _waitingForGrant;

    /// <summary>
    /// Granted and not waiting yet: the next message may already be here and on its way to the session, whose turn goes on
    /// with it (its peer writes are held for it). Once the reader waits, it says so (<c>idle</c>) and this is false.
    /// </summary>
    public bool Busy => _busy;

    private void Idle()
    {
        _busy = false;
        idle?.Invoke();
    }

    /// <summary>The session is over: only the client's close frame is awaited now.</summary>
    private volatile bool _draining;

    /// <summary>The session let this reader go (its client was lost, taken over, or handed to another session): it says nothing more.</summary>
    private volatile bool _detached;

    /// <summary>Ends a wait for a grant when the reader is let go (<see cref="Detach"/>).</summary>
    private readonly CancellationTokenSource _detach = new();

    /// <summary>The client message being received (pooled while a message arrives; lent to the core for text frames).</summary>
    private byte[] _frame = [];

    /// <summary>The length of the last message, to size the next one's buffer.</summary>
    private int _lastLength;

    /// <summary>Lets the reader take one more message.</summary>
    public void Grant()
    {
        if (!_waitingForGrant) _busy = true; // the reader goes on as soon as the session's step returns
        _granted.Release();
    }

    /// <summary>
    /// Lets the reader go: it posts nothing more, and stops at once if it waits for a grant (where it touches no frame: a
    /// session that handed its WebSocket on, or that asked to resume another, waits there), else before its next message.
    /// </summary>
    public void Detach()
    {
        _detached = true;
        _detach.Cancel();
    }

    /// <summary>From now on, read only to reach the client's close frame, without waiting for grants.</summary>
    public void Drain()
    {
        _draining = true;
        if (_granted.CurrentCount == 0) _granted.Release();
    }

    public async Task RunAsync(CancellationToken cancel)
    {
        using var waits = CancellationTokenSource.CreateLinkedTokenSource(cancel, _detach.Token);
        try
        {
            while (!_detached)
            {
                if (!_draining && !_granted.Wait(0))
                {
                    _waitingForGrant = true;
                    Idle();
                    await _granted.WaitAsync(waits.Token);
                    _waitingForGrant = false;
                    if (_detached) return;
                }
                // Wait for the next frame without a buffer (a zero-byte read), so an idle session pins none.
                var next = client.ReceiveAsync(Memory<byte>.Empty, cancel);
                if (!next.IsCompleted) Idle();
                if ((await next).MessageType == WebSocketMessageType.Close)
                {
                    await PostAsync(Input.ClientGone, cancel);
                    return;
                }
                // Sized like the last message (clients tend to repeat theirs), so a stream of 22 KB sendb
                // messages is not received into 16 KiB and copied into 32 KiB every time.
                _frame = ArrayPool<byte>.Shared.Rent(Math.Min(Math.Max(_lastLength + 1, 16 * 1024), maxMessageBytes + 1));
                var (type, length) = await ReceiveMessageAsync(cancel);
                _lastLength = length;
                if (type == WebSocketMessageType.Close)
                {
                    ReturnFrame();
                    await PostAsync(Input.ClientGone, cancel);
                    return;
                }
                if (_draining)
                {
                    ReturnFrame();
                    continue;
                }
                if (length > maxMessageBytes)
                {
                    ReturnFrame();
                    _draining = true;
                    await PostAsync(Input.NewClientMessageTooLarge(maxMessageBytes), cancel);
                    continue;
                }
                if (type == WebSocketMessageType.Text)
                {
                    // The core parses text frames within the step and keeps nothing of them: the session returns the buffer.
                    var frame = _frame;
                    _frame = [];
                    await PostAsync(Input.NewClientText(new ReadOnlyMemory<byte>(frame, 0, length)), cancel);
                }
                else
                {
                    // Binary frames may wait in the core's queue: give it its own copy.
                    var copy = GC.AllocateUninitializedArray<byte>(length);
                    _frame.AsSpan(0, length).CopyTo(copy);
                    ReturnFrame();
                    await PostAsync(Input.NewClientBinary(copy), cancel);
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
            if (_detached) return;
            // Without a close frame: a session with a resumable connection waits for its client to come back.
            log.LogDebug("client stream ended: {Reason} (state {State})", e.Message, client.State);
            await PostAsync(Input.ClientLost, CancellationToken.None);
        }
        catch (Exception e)
        {
            // A bug of ours: logged once; the session ends with code 1 instead of waiting for a frame that never comes.
            log.LogError(e, "reading the client failed unexpectedly");
            await PostAsync(Input.NewRunnerFault("the server hit an internal error (it is in the server's log)"), CancellationToken.None);
        }
        finally
        {
            ReturnFrame();
        }
    }

    private void ReturnFrame()
    {
        if (_frame.Length > 0) ArrayPool<byte>.Shared.Return(_frame);
        _frame = [];
    }

    /// <summary>
    /// Receives one whole message into <see cref="_frame"/> (growing it from the pool up to the size
    /// limit). As soon as more than the limit has arrived it stops and reports the length so far.
    /// </summary>
    private async ValueTask<(WebSocketMessageType Type, int Length)> ReceiveMessageAsync(CancellationToken cancel)
    {
        // One byte past the limit is enough to know; never ask for more, because a receive returns only once its
        // buffer is full or the message ends (and the pool's arrays are larger than asked: 2 MiB for 1 MiB + 1).
        var limit = maxMessageBytes + 1;
        var length = 0;
        while (true)
        {
            if (length == Math.Min(_frame.Length, limit))
            {
                var larger = ArrayPool<byte>.Shared.Rent(Math.Min(length * 2, limit));
                _frame.AsSpan(0, length).CopyTo(larger);
                ArrayPool<byte>.Shared.Return(_frame);
                _frame = larger;
            }
            var receiving = client.ReceiveAsync(_frame.AsMemory(length, Math.Min(_frame.Length, limit) - length), cancel);
            // Waiting for (more of) a message begun: it must keep coming, and the core closes one that stalls. Said only
            // when the wait is real: a message that has arrived whole, the common case, costs no input.
            if (!receiving.IsCompleted)
            {
                Idle();
                await PostAsync(Input.ClientMessageProgress, cancel);
            }
            var result = await receiving;
            length += result.Count;
            if (result.MessageType == WebSocketMessageType.Close) return (WebSocketMessageType.Close, 0);
            if (result.EndOfMessage || length > maxMessageBytes) return (result.MessageType, length);
        }
    }

    private async ValueTask PostAsync(Input input, CancellationToken cancel)
    {
        if (_detached) return;
        try
        {
            var posting = inputs.WriteAsync(input, cancel);
            if (!posting.IsCompleted) Idle(); // the session is behind: its turn's writes go meanwhile
            await posting;
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
            // The session is over already.
        }
    }
}
