namespace Ws2s.AspNetCore.Configuration;

/// <summary><c>resume</c>: connections that outlive their client's WebSocket (spec/protocol.md, Resumable sessions).</summary>
public sealed partial class Ws2sOptions
{
    public ResumeOptions Resume { get; set; } = new();

    public sealed class ResumeOptions
    {
        /// <summary>Seconds a session whose client was lost keeps its resumable connection, waiting for a resume; 0: connections are not resumable.</summary>
        public int GraceSeconds { get; set; } = 30;

        /// <summary>The peer's bytes a resumable connection keeps for its client (the last sent while it is there; past it, while it is away, the peer is not read).</summary>
        public int MaxBufferedBytes { get; set; } = 1 << 20;

        /// <summary>
        /// This server's name in its resume tokens (letters, digits, <c>-</c>), for a balancer to route resumes by (<c>?instance=</c>); fixed at
        /// start. Unset: a random name, different at every start (enough for one instance).
        /// </summary>
        public string? Instance { get; set; }

        /// <summary>
        /// The peer's bytes all resumable connections together may keep (default: as <c>limits.maxPendingBytesTotal</c>); while
        /// they keep that much, those that keep any read their peers no more until their clients acknowledge. Read at start.
        /// </summary>
        public long? MaxBufferedBytesTotal { get; set; }

        /// <summary>Resumes one client address may attempt a minute (refused with code 9 past it): token guessing is slowed to a crawl.</summary>
        public int MaxAttemptsPerMinute { get; set; } = 30;
    }
}
