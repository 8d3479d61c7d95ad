using System.Collections.Concurrent;
using System.Net;

namespace Ws2s.AspNetCore.Admission;

/// <summary>
/// Per client address, what it may still do this second: a one-second token bucket of each measure one check takes (UDP
/// datagrams and their bytes; name lookups). A measure whose rate is 0 is not limited.
/// </summary>
internal sealed class ClientRates(TimeProvider time)
{
    private sealed class Bucket
    {
        public long Refilled;
        public double First, Second;
    }

    private readonly ConcurrentDictionary<IPAddress, Bucket> _buckets = new();
    private long _swept;

    /// <summary>
    /// Takes <paramref name="first"/>'s amount (and <paramref name="second"/>'s) from <paramref name="client"/>'s allowance,
    /// each refilled at its rate per second up to one second's worth; false: over a rate, and nothing is taken.
    /// </summary>
    public bool Take(IPAddress client, (double Amount, double PerSecond) first, (double Amount, double PerSecond) second = default)
    {
        var now = time.GetTimestamp();
        Sweep(now);
        var bucket = _buckets.GetOrAdd(client, _ => new Bucket { Refilled = now, First = first.PerSecond, Second = second.PerSecond });
        lock (bucket)
        {
            var seconds = time.GetElapsedTime(bucket.Refilled, now).TotalSeconds;
            bucket.Refilled = now;
            bucket.First = Math.Min(first.PerSecond, bucket.First + seconds * first.PerSecond);
            bucket.Second = Math.Min(second.PerSecond, bucket.Second + seconds * second.PerSecond);
            if ((first.PerSecond > 0 && bucket.First < first.Amount) || (second.PerSecond > 0 && bucket.Second < second.Amount)) return false;
            // An unlimited measure takes nothing: its balance must not run into debt that a later limit (a reload) would collect.
            if (first.PerSecond > 0) bucket.First -= first.Amount;
            if (second.PerSecond > 0) bucket.Second -= second.Amount;
            return true;
        }
    }

    /// <summary>Once a minute, forgets clients whose buckets are full again (nothing to remember).</summary>
    private void Sweep(long now)
    {
        var last = Interlocked.Read(ref _swept);
        if (time.GetElapsedTime(last, now) < TimeSpan.FromMinutes(1) || Interlocked.CompareExchange(ref _swept, now, last) != last) return;
        foreach (var (client, bucket) in _buckets)
            if (time.GetElapsedTime(bucket.Refilled, now) > TimeSpan.FromMinutes(1)) _buckets.TryRemove(client, out _);
    }
}
