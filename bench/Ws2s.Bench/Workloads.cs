using System.Diagnostics;

namespace Ws2s.Bench;

internal static class Workloads
{
    /// <summary>
    /// Bulk echo: <paramref name="connections"/> streams each write <paramref name="writeSize"/>-byte
    /// chunks as fast as the bridge takes them while reading the echo back; every byte is checked
    /// against the pattern. Returns echoed bytes per second (all streams together).
    /// </summary>
    public static async Task<double> ThroughputAsync(Func<Task<IEchoStream>> open, int connections, int writeSize, TimeSpan duration)
    {
        var streams = await Task.WhenAll(Enumerable.Range(0, connections).Select(_ => open()));
        var clock = Stopwatch.StartNew();
        var totals = await Task.WhenAll(streams.Select(stream => RunOneAsync(stream, writeSize, duration)));
        var seconds = clock.Elapsed.TotalSeconds;
        foreach (var s in streams) await s.DisposeAsync();
        return totals.Sum() / seconds;
    }

    private static async Task<long> RunOneAsync(IEchoStream stream, int writeSize, TimeSpan duration)
    {
        var deadline = Stopwatch.StartNew();
        long written = 0;
        var writer = Task.Run(async () =>
        {
            var chunk = new byte[writeSize];
            while (deadline.Elapsed < duration)
            {
                Pattern.Fill(written, chunk);
                await stream.WriteAsync(chunk);
                written += chunk.Length;
            }
            return written;
        });
        var buffer = new byte[256 * 1024];
        long read = 0;
        while (!writer.IsCompleted || read < Volatile.Read(ref written))
        {
            var n = await stream.ReadAsync(buffer);
            if (n == 0) throw new InvalidOperationException("the stream ended early");
            if (!Pattern.Matches(read, buffer.AsSpan(0, n))) throw new InvalidOperationException($"corrupt bytes at offset {read}");
            read += n;
            if (writer.IsCompleted && read >= writer.Result) break;
        }
        return read;
    }

    /// <summary>Round trips of <paramref name="size"/>-byte messages, one at a time: (p50, p99) in microseconds.</summary>
    public static async Task<(double P50, double P99)> LatencyAsync(Func<Task<IEchoStream>> open, int size, int count)
    {
        await using var stream = await open();
        var message = new byte[size];
        var buffer = new byte[64 * 1024];
        var samples = new double[count];
        for (var i = -count / 10; i < count; i++) // the first tenth warms up
        {
            Pattern.Fill(i, message);
            var clock = Stopwatch.GetTimestamp();
            await stream.WriteAsync(message);
            var got = 0;
            while (got < size) got += await stream.ReadAsync(buffer.AsMemory(got));
            if (i >= 0) samples[i] = Stopwatch.GetElapsedTime(clock).TotalMicroseconds;
        }
        Array.Sort(samples);
        return (samples[count / 2], samples[count * 99 / 100]);
    }
}

/// <summary>Deterministic bytes for a stream offset, so a reader can check any chunk it gets.</summary>
internal static class Pattern
{
    public static byte At(long offset) => (byte)(offset * 31 + (offset >> 8));

    public static void Fill(long offset, Span<byte> into)
    {
        for (var i = 0; i < into.Length; i++) into[i] = At(offset + i);
    }

    public static bool Matches(long offset, ReadOnlySpan<byte> bytes)
    {
        for (var i = 0; i < bytes.Length; i++)
            if (bytes[i] != At(offset + i)) return false;
        return true;
    }
}
