using System.Diagnostics;

namespace Ws2s.Bench;

internal static class Workloads
{
    /// <summary>
    /// Bulk echo: <paramref name="connections"/> streams each write <paramref name="writeSize"/>-byte
    /// chunks as fast as the bridge takes them while reading the echo back; every byte is checked
    /// against the pattern. Returns echoed bytes per second (all streams together).
    /// </summary>
    /// <summary>
    /// Echoes for <paramref name="duration"/> over <paramref name="connections"/> streams; bytes per second.
    /// With <paramref name="pacedBytesPerSecond"/> each writer holds to that rate instead of going flat out.
    /// </summary>
    public static async Task<double> ThroughputAsync(Func<Task<IEchoStream>> open, int connections, int writeSize, TimeSpan duration,
        double pacedBytesPerSecond = 0)
    {
        var streams = await Task.WhenAll(Enumerable.Range(0, connections).Select(_ => open()));
        var clock = Stopwatch.StartNew();
        var totals = await Task.WhenAll(streams.Select(stream => RunOneAsync(stream, writeSize, duration, pacedBytesPerSecond)));
        var seconds = clock.Elapsed.TotalSeconds;
        foreach (var s in streams) await s.DisposeAsync();
        return totals.Sum() / seconds;
    }

    private static async Task<long> RunOneAsync(IEchoStream stream, int writeSize, TimeSpan duration, double pacedBytesPerSecond)
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
                if (pacedBytesPerSecond > 0)
                {
                    // Pacing, not synchronisation: wait while ahead of the rate by more than the timer's grain.
                    var ahead = TimeSpan.FromSeconds(written / pacedBytesPerSecond) - deadline.Elapsed;
                    if (ahead > TimeSpan.FromMilliseconds(5)) await Task.Delay(ahead);
                }
            }
            return written;
        });
        var buffer = new byte[256 * 1024];
        long read = 0;
        // Read until everything written came back. While the writer runs, a read is raced against it
        // finishing, so the reader never waits for bytes that will not come. Once it has finished, only
        // the read is awaited: racing it against a completed task again would spin on this thread
        // without ever yielding, and two such loops starve a 2-core thread pool (every session then
        // stalls, and the server rightly closes those left half-way through a message).
        Task<int>? pending = null;
        while (true)
        {
            if (writer.IsCompleted && read >= writer.Result) return read;
            pending ??= stream.ReadAsync(buffer).AsTask();
            if (!writer.IsCompleted && await Task.WhenAny(pending, writer) != pending) continue;
            var n = await pending;
            pending = null;
            if (n == 0) throw new InvalidOperationException("the stream ended early");
            if (!Pattern.Matches(read, buffer.AsSpan(0, n))) throw new InvalidOperationException($"corrupt bytes at offset {read}");
            read += n;
        }
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

internal static class ChurnWorkloads
{
    /// <summary>
    /// Open, one 64-byte echo, close: <paramref name="cycles"/> times over <paramref name="workers"/>
    /// loops. Returns completed cycles per second. A count, not a duration: every cycle leaves
    /// sockets in TIME_WAIT, and a fast path would otherwise run the machine out of ephemeral ports.
    /// </summary>
    public static async Task<double> ConnectsAsync(Func<Task<IEchoStream>> open, int workers, int cycles)
    {
        var clock = Stopwatch.StartNew();
        var remaining = cycles;
        var counts = await Task.WhenAll(Enumerable.Range(0, workers).Select(_ => Task.Run(async () =>
        {
            var message = new byte[64];
            var buffer = new byte[64];
            var done = 0;
            while (Interlocked.Decrement(ref remaining) >= 0)
            {
                await using var stream = await open();
                await stream.WriteAsync(message);
                var got = 0;
                while (got < message.Length) got += await stream.ReadAsync(buffer.AsMemory(got));
                done++;
            }
            return done;
        })));
        return counts.Sum() / clock.Elapsed.TotalSeconds;
    }

    /// <summary>
    /// Opens <paramref name="count"/> bridged sessions, each connected to the echo server, and leaves
    /// them idle; returns the server's RSS growth per session in bytes.
    /// </summary>
    private static async Task EchoOnceAsync(IEchoStream stream, int bytes)
    {
        var data = new byte[bytes];
        Pattern.Fill(0, data);
        await stream.WriteAsync(data);
        var buffer = new byte[bytes];
        var got = 0;
        while (got < bytes)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(got));
            if (n == 0) throw new InvalidOperationException("the stream ended early");
            got += n;
        }
    }

    /// <param name="echoBytes">Bytes each session echoes once before it idles (0: none), so what a session keeps after traffic shows.</param>
    public static async Task<double> IdleRssPerSessionAsync(ServerProcess server, Func<Task<IEchoStream>> open, int count, TimeSpan hold, int echoBytes = 0)
    {
        // One session first, so the baseline includes what the first session warms up (JIT, pools).
        await using var warm = await open();
        await Task.Delay(1000);
        var before = server.Rss();
        var sessions = new List<IEchoStream>(count);
        for (var i = 0; i < count; i += 100)
            sessions.AddRange(await Task.WhenAll(Enumerable.Range(0, Math.Min(100, count - i)).Select(async _ =>
            {
                var stream = await open();
                if (echoBytes > 0) await EchoOnceAsync(stream, echoBytes);
                return stream;
            })));
        await Task.Delay(2000); // let the server settle (not a synchronisation: a measurement pause)
        var after = server.Rss();
        if (hold > TimeSpan.Zero)
        {
            // Time to take a heap snapshot of the server (dotnet-gcdump collect -p PID) with the sessions open.
            Console.Error.WriteLine($"bench: holding {count} idle sessions for {hold.TotalSeconds} s; ws2sd is PID {server.Pid}");
            await Task.Delay(hold);
        }
        foreach (var s in sessions) await s.DisposeAsync();
        return (after - before) / (double)count;
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
