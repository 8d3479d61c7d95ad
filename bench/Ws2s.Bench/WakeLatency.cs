namespace Ws2s.Bench;

/// <summary>
/// Holds the CPUs' wake-up latency at zero for as long as the bench runs (Linux PM QoS: 0 written to
/// <c>/dev/cpu_dma_latency</c> and the file kept open, what tuned's latency-performance profile does).
/// On this VM an idle CPU halts (cpuidle haltpoll), and waking it for the next packet cost a round trip on
/// loopback ~70 µs: plain TCP measured 105 µs p50 on a quiet machine and 33 µs with the latency held, and a
/// path that kept a CPU busy (more processes, more hops) looked faster than plain TCP. Needs root; without
/// it the bench says its latency figures include those wake-ups.
/// </summary>
internal sealed class WakeLatency : IDisposable
{
    private readonly FileStream? _held;

    private WakeLatency(FileStream? held) => _held = held;

    public bool Held => _held is not null;

    public static WakeLatency Hold()
    {
        try
        {
            var file = new FileStream("/dev/cpu_dma_latency", FileMode.Open, FileAccess.Write);
            file.Write(BitConverter.GetBytes(0));
            file.Flush();
            return new WakeLatency(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new WakeLatency(null);
        }
    }

    public void Dispose() => _held?.Dispose(); // closing the file ends the request
}
