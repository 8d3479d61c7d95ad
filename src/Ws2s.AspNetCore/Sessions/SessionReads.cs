using System.Buffers;
using System.Runtime.InteropServices;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Sessions;

/// <summary>
/// A session's reads on their way to its loop. A peer takes one of its tickets before it rents a read buffer, so however
/// many peers a slow client has (a Wisp connection's streams), at most that many reads wait for it; when the loop is done
/// with an input, the pooled buffer it lent goes back to the pool and a peer read's ticket back to the session.
/// </summary>
internal sealed class SessionReads(int tickets = SessionReads.DefaultTickets)
{
    /// <summary>As many as the session's input channel holds.</summary>
    public const int DefaultTickets = 8;

    private readonly SemaphoreSlim _tickets = new(tickets);

    /// <summary>Tickets not taken.</summary>
    public int Available => _tickets.CurrentCount;

    /// <summary>Completed while peers may be read; a suspended session that keeps all it may holds its peers' reads here.</summary>
    private volatile TaskCompletionSource _open = Opened();

    private static TaskCompletionSource Opened()
    {
        var open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        open.SetResult();
        return open;
    }

    /// <summary>May the session's peers be read? (Set by the session after each step: false while it may keep no more.)</summary>
    public bool Open
    {
        get => _open.Task.IsCompleted;
        set
        {
            if (value == Open) return;
            if (value) _open.TrySetResult();
            else _open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    public async Task TakeAsync(CancellationToken cancel)
    {
        if (!_open.Task.IsCompleted) await _open.Task.WaitAsync(cancel);
        await _tickets.WaitAsync(cancel);
    }

    /// <summary>A ticket that no <c>Received</c> will bring back (the peer ended or failed, or its generation closed).</summary>
    public void GiveBack() => _tickets.Release();

    /// <summary>The loop is done with <paramref name="input"/>: its pooled buffer (peer reads, client text frames) goes back, and a peer read's ticket.</summary>
    public void Done(Input input)
    {
        var lent = input switch
        {
            Input.Received received => received.Bytes,
            Input.ClientText text => text.Frame,
            _ => ReadOnlyMemory<byte>.Empty,
        };
        if (!lent.IsEmpty && MemoryMarshal.TryGetArray(lent, out var segment))
            ArrayPool<byte>.Shared.Return(segment.Array!);
        if (input.IsReceived) GiveBack();
    }
}
