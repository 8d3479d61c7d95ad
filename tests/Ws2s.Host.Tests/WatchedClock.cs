using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Ws2s.Host.Tests;

/// <summary>
/// A fake clock (<see cref="FakeTimeProvider"/>) that also tells when a timer is armed, so a test moves time on only
/// once the server waits for it: no sleeps, and no race with the step that arms the timer. Time stands still
/// until the test advances it.
/// </summary>
public sealed class WatchedClock() : FakeTimeProvider(DateTimeOffset.UtcNow)
{
    private readonly Lock _gate = new();
    private readonly List<(TimeSpan After, TaskCompletionSource Armed)> _waiters = [];

    /// <summary>Makes a server under test read this clock (for <see cref="Ws2sHost.StartAsync(string, Action{IServiceCollection}?, string[])"/>).</summary>
    public Action<IServiceCollection> Serves => services => services.AddSingleton<TimeProvider>(this);

    /// <summary>
    /// Completes when, from now on, a timer is armed to fire <paramref name="after"/> from the moment it is armed (ask
    /// before the action that arms it, await after it). Fails after <see cref="WsClient.Patience"/>.
    /// </summary>
    public Task WhenArmedAsync(TimeSpan after)
    {
        var armed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate) _waiters.Add((after, armed));
        return armed.Task.WaitAsync(WsClient.Patience);
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new Watched(base.CreateTimer(callback, state, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan), this);
        timer.Change(dueTime, period);
        return timer;
    }

    private void Armed(TimeSpan dueTime)
    {
        if (dueTime == Timeout.InfiniteTimeSpan) return;
        lock (_gate)
        {
            foreach (var waiter in _waiters.Where(w => dueTime == w.After).ToList())
            {
                _waiters.Remove(waiter);
                waiter.Armed.TrySetResult();
            }
        }
    }

    private sealed class Watched(ITimer timer, WatchedClock clock) : ITimer
    {
        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            var changed = timer.Change(dueTime, period);
            clock.Armed(dueTime);
            return changed;
        }

        public void Dispose() => timer.Dispose();

        public ValueTask DisposeAsync() => timer.DisposeAsync();
    }
}
