namespace Ws2s.AspNetCore.Sessions;

/// <summary>
/// The server-wide bound on client requests held in session queues (<c>limits.maxQueuedBytes</c>).
/// Each session's queue is bounded on its own (<c>limits.maxPendingBytes</c>); this bounds them all
/// together, so many held-back sessions cannot take the server's memory. A session whose queue is
/// empty may always take one more message (so no session starves); one that already holds queued
/// bytes reads its client again only while the budget has room.
/// </summary>
internal sealed class QueueBudget(long limit)
{
    private long _used;

    public long Limit => limit;

    /// <summary>Queued bytes of all sessions now.</summary>
    public long Used => Interlocked.Read(ref _used);

    public bool HasRoom => Used < limit;

    /// <summary>Records bytes taken (positive) or let go (negative) outside a session's core: a peer writer's.</summary>
    public void Add(int bytes) => Interlocked.Add(ref _used, bytes);

    /// <summary>Records that a session's queue went from <paramref name="held"/> to <paramref name="now"/> bytes, and returns <paramref name="now"/>.</summary>
    public int Update(int held, int now)
    {
        if (now != held) Interlocked.Add(ref _used, now - held);
        return now;
    }
}
