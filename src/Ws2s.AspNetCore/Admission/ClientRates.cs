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

    /// <summary>Forgotten a minute after their last use (full again by then: nothing to remember).</summary>
    private readonly PerClientAddress<Bucket> _buckets = new(time, bucket => Volatile.Read(ref bucket.Refilled));

    /// <summary>
    /// Takes <paramref name="first"/>'s amount (and <paramref name="second"/>'s) from <paramref name="client"/>'s allowance,
    /// each refilled at its rate per second up to one second's worth; false: over a rate, and nothing is taken.
    /// </summary>
    public bool Take(IPAddress client, (double Amount, double PerSecond) first, (double Amount, double PerSecond) second = default)
    {
        var now = time.GetTimestamp();
        var bucket = _buckets.Get(client, now, () => new Bucket { Refilled = now, First = first.PerSecond, Second = second.PerSecond });
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
}
