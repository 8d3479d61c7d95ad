using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Telemetry;

/// <summary>
/// Counts and logs one session: sessions opened and active, bytes each way, how connects ended (from
/// the core's <see cref="Observation"/>s, with how long they took), and the line logged at its end.
/// </summary>
/// <remarks><c>endpoint</c>: which protocol the session speaks (<c>ws2s</c>, <c>websockify</c>, <c>wisp</c> or <c>wsproxy</c>).</remarks>
internal sealed class SessionObserver(Ws2sMetrics metrics, ILogger log, string client, TimeProvider time, string endpoint = "ws2s")
{
    private long _started, _bytesToPeer, _bytesToClient;

    /// <summary>Suspended now (counted in <c>ws2s.resume.suspended</c>).</summary>
    private bool _suspended;

    /// <summary>Where the session last dialled (for the log line): an address and port, <c>unix:/path</c>, a named peer, or a tunnel's target and SSH server.</summary>
    public string? LastDialled { get; set; }

    /// <summary>Who the client is, for the log (address and path; never the query, which may hold a token).</summary>
    public string Client => client;

    public void Started()
    {
        _started = time.GetTimestamp();
        metrics.SessionOpened(endpoint);
        log.LogDebug("session from {Client} started", client);
    }

    public void Ended(int status, string reason)
    {
        metrics.SessionClosed();
        if (_suspended) metrics.NoLongerSuspended(); // ended suspended some other way than its grace (the server stopping)
        log.LogInformation(
            "session from {Client} ended after {Seconds:F1} s: {BytesToPeer} bytes to peers, {BytesToClient} bytes to the client, last target {Target}, close {Status} {Reason}",
            client, time.GetElapsedTime(_started).TotalSeconds, _bytesToPeer, _bytesToClient, LastDialled ?? "none", status, reason);
    }

    /// <summary>A resume this session asked for, or was asked, was refused (code 9).</summary>
    public void ResumeRefused() => metrics.ResumeRefused();

    public void ToPeer(int bytes)
    {
        _bytesToPeer += bytes;
        metrics.Relayed(toPeer: true, bytes);
    }

    public void ToClient(int bytes)
    {
        _bytesToClient += bytes;
        metrics.Relayed(toPeer: false, bytes);
    }

    public void Count(Observation observation)
    {
        switch (observation)
        {
            case Observation.ConnectAnswered answered:
                metrics.ConnectAnswered(answered.Code);
                if (answered.Took?.Value is { } milliseconds) metrics.ConnectDuration.Record(milliseconds / 1000.0);
                break;
            case Observation.StreamOpened stream:
                metrics.WispStreamOpened(stream.Kind);
                break;
            case { IsSuspended: true }:
                _suspended = true;
                metrics.Suspended();
                log.LogInformation("session from {Client} suspended: its client was lost; its connection waits for a resume", client);
                break;
            case Observation.Resumed resumed:
                metrics.Resumed(_suspended, resumed.Replayed);
                _suspended = false;
                log.LogInformation("session from {Client} resumed, {Replayed} bytes sent again", client, resumed.Replayed);
                break;
            case { IsExpired: true }:
                _suspended = false;
                metrics.Expired();
                break;
        }
    }
}
