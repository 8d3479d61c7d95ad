using System.Collections.Concurrent;
using System.Net;

namespace Ws2s.AspNetCore.Admission;

/// <summary>
/// What a limit remembers per client address: one entry each, forgotten once its <paramref name="stamp"/> is more than a
/// minute old (looked for once a minute, on use), so that the addresses of a busy day do not pile up.
/// </summary>
internal sealed class PerClientAddress<T>(TimeProvider time, Func<T, long> stamp) where T : class
{
    private readonly ConcurrentDictionary<IPAddress, T> _entries = new();
    private long _swept;

    /// <summary><paramref name="client"/>'s entry at <paramref name="now"/> (a timestamp of <c>time</c>), made by <paramref name="create"/> if it has none.</summary>
    public T Get(IPAddress client, long now, Func<T> create)
    {
        var last = Interlocked.Read(ref _swept);
        if (time.GetElapsedTime(last, now) >= TimeSpan.FromMinutes(1) && Interlocked.CompareExchange(ref _swept, now, last) == last)
            foreach (var (address, entry) in _entries)
                if (time.GetElapsedTime(stamp(entry), now) > TimeSpan.FromMinutes(1)) _entries.TryRemove(address, out _);
        return _entries.GetOrAdd(client, _ => create());
    }
}
