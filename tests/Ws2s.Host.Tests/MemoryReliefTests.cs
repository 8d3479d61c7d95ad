using Microsoft.Extensions.Time.Testing;
using Ws2s.AspNetCore.Sessions;

namespace Ws2s.Host.Tests;

/// <summary>Memory after a burst (issue 23): a drained burst of queued bytes is collected once, a busy queue never.</summary>
public sealed class MemoryReliefTests
{
    [Fact]
    public async Task A_burst_that_drains_is_collected_once_and_a_queue_that_stays_full_never()
    {
        var budget = new QueueBudget(1L << 30);
        var time = new FakeTimeProvider();
        var collections = 0;
        using var relief = new MemoryRelief(budget, time, () => collections++);
        await relief.StartAsync(CancellationToken.None);

        // 150 sessions' queues fill (600 MiB) and stay full: no collection while they are held.
        var held = budget.Update(0, 600 << 20);
        for (var i = 0; i < 10; i++) time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(0, collections);

        // They vanish: one collection, and no more while the server stays idle.
        budget.Update(held, 0);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, collections);
        for (var i = 0; i < 100; i++) time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, collections);

        // A small burst (under the threshold) is left to the GC's own schedule.
        held = budget.Update(0, (int)(MemoryRelief.Threshold / 2));
        time.Advance(TimeSpan.FromSeconds(1));
        budget.Update(held, 0);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, collections);
    }
}
