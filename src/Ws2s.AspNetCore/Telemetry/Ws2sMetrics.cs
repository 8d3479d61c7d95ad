using System.Diagnostics.Metrics;

namespace Ws2s.AspNetCore.Telemetry;

/// <summary>
/// The server's instruments (System.Diagnostics.Metrics, meter <c>Ws2s</c>): exported at /metrics in
/// Prometheus text and visible to dotnet-counters. Counts are kept here and observed by the meter, so
/// every series (each outcome, reason and direction) is exported from the first scrape, at 0.
/// </summary>
internal sealed class Ws2sMetrics : IDisposable
{
    public const string MeterName = "Ws2s";

    private readonly Meter _meter;
    private long _sessions, _sessionsActive, _policyRefusals, _udpDropped;
    private readonly Tally _upgradesRefused = new("reason", "token", "origin", "target", "subprotocol", "limit", "host");
    private readonly Tally _connectionsDropped = new("reason", "limit", "evicted_silent", "handshake_timeout");
    private readonly Tally _connects = new("outcome", "0", "2", "4", "6", "8");
    private readonly Tally _bytes = new("direction", "to_peer", "to_client");
    private readonly Tally _sessionsByEndpoint = new("endpoint", "ws2s", "websockify", "wisp", "wsproxy");
    private readonly Tally _wispStreams = new("type", "tcp", "udp");
    private readonly Tally _resumes = new("outcome", "suspended", "resumed", "expired", "refused");
    private long _suspended, _replayed;

    /// <summary>The meter comes from the application's meter factory, so each server instance has its own.</summary>
    public Ws2sMetrics(IMeterFactory meters)
    {
        _meter = meters.Create(MeterName);
        _meter.CreateObservableUpDownCounter("ws2s.sessions.active", () => Interlocked.Read(ref _sessionsActive), description: "Sessions open now");
        _meter.CreateObservableCounter("ws2s.sessions", () => Interlocked.Read(ref _sessions), description: "Sessions opened");
        _meter.CreateObservableCounter("ws2s.sessions.by_endpoint", _sessionsByEndpoint.Measurements,
            description: "Sessions opened, by endpoint (ws2s, websockify, wisp: one per Wisp WebSocket, wsproxy)");
        _meter.CreateObservableCounter("ws2s.wisp.streams", _wispStreams.Measurements, description: "Wisp streams opened, by type (tcp, udp)");
        _meter.CreateObservableCounter("ws2s.upgrades.refused", _upgradesRefused.Measurements, description: "Upgrade requests refused, by reason");
        _meter.CreateObservableCounter("ws2s.connections.dropped", _connectionsDropped.Measurements,
            description: "TCP connections refused or closed before their handshake, by reason (limit, evicted_silent, handshake_timeout)");
        _meter.CreateObservableCounter("ws2s.connects", _connects.Measurements, description: "Connect requests answered, by outcome code");
        _meter.CreateObservableCounter("ws2s.policy.refusals", () => Interlocked.Read(ref _policyRefusals), description: "Destinations refused by the policy (code 4)");
        _meter.CreateObservableCounter("ws2s.udp.dropped", () => Interlocked.Read(ref _udpDropped),
            description: "Datagrams from clients dropped for going over udp.maxPacketsPerSecond or udp.maxBytesPerSecond");
        _meter.CreateObservableCounter("ws2s.bytes", _bytes.Measurements, unit: "By", description: "Bytes relayed, by direction");
        _meter.CreateObservableCounter("ws2s.resume.sessions", _resumes.Measurements,
            description: "Resumable sessions suspended (their client lost), resumed, expired (no resume within the grace), and resumes refused (code 9)");
        _meter.CreateObservableUpDownCounter("ws2s.resume.suspended", () => Interlocked.Read(ref _suspended), description: "Sessions suspended now, waiting for their client");
        _meter.CreateObservableCounter("ws2s.resume.replayed", () => Interlocked.Read(ref _replayed), unit: "By", description: "Peer bytes sent again to clients that resumed");
        ConnectDuration = _meter.CreateHistogram<double>("ws2s.connect.duration", unit: "s", description: "Time from connect to its answer",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
    }

    public Histogram<double> ConnectDuration { get; }

    public void SessionOpened(string endpoint)
    {
        _sessionsByEndpoint.Add(endpoint, 1);
        Interlocked.Increment(ref _sessions);
        Interlocked.Increment(ref _sessionsActive);
    }

    public void SessionClosed() => Interlocked.Decrement(ref _sessionsActive);

    /// <param name="reason">token, origin, target, subprotocol, limit or host (a name the server does not answer to).</param>
    public void UpgradeRefused(string reason) => _upgradesRefused.Add(reason, 1);

    /// <param name="reason">limit, evicted_silent or handshake_timeout.</param>
    public void ConnectionDropped(string reason) => _connectionsDropped.Add(reason, 1);

    /// <summary>A connect was answered with <paramref name="code"/> (0, 2, 4, 6 or 8).</summary>
    public void ConnectAnswered(int code)
    {
        _connects.Add(code.ToString(System.Globalization.CultureInfo.InvariantCulture), 1);
        if (code == 4) Interlocked.Increment(ref _policyRefusals);
    }

    public void WispStreamOpened(string type) => _wispStreams.Add(type, 1);

    public void UdpDropped() => Interlocked.Increment(ref _udpDropped);

    public void Suspended()
    {
        _resumes.Add("suspended", 1);
        Interlocked.Increment(ref _suspended);
    }

    /// <summary>A suspended session (or one that still had a client: <paramref name="wasSuspended"/> false) was resumed, <paramref name="replayed"/> bytes sent again.</summary>
    public void Resumed(bool wasSuspended, long replayed)
    {
        _resumes.Add("resumed", 1);
        if (wasSuspended) Interlocked.Decrement(ref _suspended);
        Interlocked.Add(ref _replayed, replayed);
    }

    public void Expired()
    {
        _resumes.Add("expired", 1);
        Interlocked.Decrement(ref _suspended);
    }

    public void ResumeRefused() => _resumes.Add("refused", 1);

    /// <summary>A suspended session ended otherwise than by its grace (the server stopping).</summary>
    public void NoLongerSuspended() => Interlocked.Decrement(ref _suspended);

    public void Relayed(bool toPeer, long bytes) => _bytes.Add(toPeer ? "to_peer" : "to_client", bytes);

    /// <summary>Reports the bytes queued in all sessions (<c>ws2s.pending.bytes</c>) from <paramref name="read"/>.</summary>
    public void ObservePendingBytes(Func<long> read) =>
        _meter.CreateObservableGauge("ws2s.pending.bytes", read, unit: "By", description: "Client request bytes queued in all sessions");

    public void Dispose() => _meter.Dispose();

    /// <summary>Counts by one label whose values are known up front (each reported, at 0 until counted).</summary>
    private sealed class Tally(string label, params string[] values)
    {
        private readonly long[] _counts = new long[values.Length];

        public void Add(string value, long amount)
        {
            var index = Array.IndexOf(values, value);
            if (index < 0) throw new ArgumentOutOfRangeException(nameof(value), value, $"not a known {label}");
            Interlocked.Add(ref _counts[index], amount);
        }

        public IEnumerable<Measurement<long>> Measurements()
        {
            for (var i = 0; i < values.Length; i++)
                yield return new Measurement<long>(Interlocked.Read(ref _counts[i]), new KeyValuePair<string, object?>(label, values[i]));
        }
    }
}
