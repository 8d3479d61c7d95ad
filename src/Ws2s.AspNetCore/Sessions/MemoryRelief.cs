namespace Ws2s.AspNetCore.Sessions;

/// <summary>
/// Gives memory back after a burst of queued bytes. Queued payloads are pooled arrays; when the sessions that
/// held them end (150 clients that filled their queues and vanished: 87 MiB of RSS before, 420 MiB after), the
/// arrays become garbage that an idle server never collects, so its RSS stayed at the peak. Once a second this
/// looks at the server-wide queue (<see cref="QueueBudget"/>): when it has drained to an eighth of a peak of at
/// least <see cref="Threshold"/> bytes, one aggressive full collection returns the memory to the system
/// (bench <c>--burst 150</c>: 552 MiB at the peak, 228 MiB after, where it stayed at the peak before).
/// A busy server whose queue stays full never triggers it; one that drains triggers it once per burst.
/// </summary>
internal sealed class MemoryRelief(QueueBudget budget, TimeProvider time, Action? collect = null) : IHostedService, IDisposable
{
    /// <summary>Bursts smaller than this are left to the GC's own schedule.</summary>
    public const long Threshold = 32L << 20;

    private readonly Action _collect = collect ?? (() => GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true));
    private ITimer? _timer;
    private long _peak;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _timer = time.CreateTimer(_ => Look(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        return Task.CompletedTask;
    }

    /// <summary>One look at the queue: remember its peak; after a drained burst, collect.</summary>
    internal void Look()
    {
        var used = budget.Used;
        _peak = Math.Max(_peak, used);
        if (_peak < Threshold || used > _peak / 8) return;
        _peak = used;
        _collect();
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        Dispose();
        return Task.CompletedTask;
    }

    public void Dispose() => _timer?.Dispose();
}
