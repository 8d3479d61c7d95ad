using System.Threading.Channels;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Sessions;

/// <summary>
/// A session's time as the core counts it (milliseconds since the session began, on the injected clock) and its one
/// timer, which posts <see cref="Input.Wake"/> when it fires. It is armed only for a deadline earlier than the one
/// armed: a later one is reached lazily (the early wake finds nothing due, and the session re-arms), so a busy session
/// does not touch the timer on every step. A wake a full input channel drops is not missed: that session has inputs
/// queued, and re-arms after the next of them.
/// </summary>
internal sealed class SessionTimer : IDisposable
{
    private readonly TimeProvider _time;
    private readonly ChannelWriter<Input> _inputs;
    /// <summary>The session's origin on <see cref="_time"/>'s monotonic clock.</summary>
    private readonly long _origin;
    private readonly ITimer _timer;
    /// <summary>When the timer is armed for (milliseconds from the origin); <see cref="long.MaxValue"/>: not armed.</summary>
    private long _armedFor = long.MaxValue;

    public SessionTimer(TimeProvider time, ChannelWriter<Input> inputs)
    {
        (_time, _inputs) = (time, inputs);
        _origin = time.GetTimestamp();
        _timer = time.CreateTimer(static state => ((SessionTimer)state!).Fired(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Now, for the core.</summary>
    public Instant Now() => new((long)_time.GetElapsedTime(_origin).TotalMilliseconds);

    /// <summary>Makes sure the session is woken by <paramref name="due"/> (null: no deadline).</summary>
    public void Arm(Instant now, long? due)
    {
        if (due is not { } at || at >= Volatile.Read(ref _armedFor)) return;
        Volatile.Write(ref _armedFor, at);
        _timer.Change(TimeSpan.FromMilliseconds(Math.Max(0, at - now.Milliseconds)), Timeout.InfiniteTimeSpan);
    }

    private void Fired()
    {
        Volatile.Write(ref _armedFor, long.MaxValue);
        _inputs.TryWrite(Input.Wake);
    }

    public void Dispose() => _timer.Dispose();
}
