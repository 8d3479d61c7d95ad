using System.Diagnostics.Metrics;

namespace Ws2s.AspNetCore.Telemetry;

/// <summary>
/// The server's instruments (System.Diagnostics.Metrics, meter <c>Ws2s</c>): exported at /metrics in
/// Prometheus text and visible to dotnet-counters.
/// </summary>
public sealed class Ws2sMetrics : IDisposable
{
    public const string MeterName = "Ws2s";

    private readonly Meter _meter;

    /// <summary>The meter comes from the host's meter factory, so each server instance has its own.</summary>
    public Ws2sMetrics(IMeterFactory meters)
    {
        _meter = meters.Create(MeterName);
        SessionsActive = _meter.CreateUpDownCounter<long>("ws2s.sessions.active", description: "Sessions open now");
        Sessions = _meter.CreateCounter<long>("ws2s.sessions", description: "Sessions opened");
        UpgradesRefused = _meter.CreateCounter<long>("ws2s.upgrades.refused", description: "Upgrade requests refused, by reason");
        ConnectionsClosed = _meter.CreateCounter<long>("ws2s.connections.dropped",
            description: "TCP connections refused or closed before their handshake, by reason (limit, evicted_silent, handshake_timeout)");
        Connects = _meter.CreateCounter<long>("ws2s.connects", description: "Connect requests answered, by outcome code");
        PolicyRefusals = _meter.CreateCounter<long>("ws2s.policy.refusals", description: "Destinations refused by the policy (code 4)");
        Bytes = _meter.CreateCounter<long>("ws2s.bytes", unit: "By", description: "Bytes relayed, by direction");
        ConnectDuration = _meter.CreateHistogram<double>("ws2s.connect.duration", unit: "s", description: "Time from connect to its answer",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
    }

    /// <summary>Reports the bytes queued in all sessions (<c>ws2s.pending.bytes</c>) from <paramref name="read"/>.</summary>
    public void ObservePendingBytes(Func<long> read) =>
        _meter.CreateObservableGauge("ws2s.pending.bytes", read, unit: "By", description: "Client request bytes queued in all sessions");

    public UpDownCounter<long> SessionsActive { get; }
    public Counter<long> Sessions { get; }
    public Counter<long> UpgradesRefused { get; }
    public Counter<long> ConnectionsClosed { get; }
    public Counter<long> Connects { get; }
    public Counter<long> PolicyRefusals { get; }
    public Counter<long> Bytes { get; }
    public Histogram<double> ConnectDuration { get; }

    public void Dispose() => _meter.Dispose();
}
