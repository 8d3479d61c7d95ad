namespace Ws2s.AspNetCore.Configuration;

/// <summary><c>limits</c>: what one session, one client and the whole server may hold.</summary>
public sealed partial class Ws2sOptions
{
    public sealed class LimitOptions
    {
        /// <summary>Resolve plus dial must finish within this many seconds (code 2 otherwise).</summary>
        public int ConnectTimeoutSeconds { get; set; } = 10;

        /// <summary>The largest WebSocket message a client may send; a larger one closes the session with 1009.</summary>
        public int MaxMessageBytes { get; set; } = 1 << 20;

        /// <summary>Seconds a message begun may go without a byte of it arriving; past that the session is closed (1008). A slow but steady upload is never cut.</summary>
        public int MessageTimeoutSeconds { get; set; } = 30;

        /// <summary>Requests that may queue behind a pending connect or write before the runner stops reading the client.</summary>
        public int MaxPendingRequests { get; set; } = 64;

        /// <summary>Bytes of payload that may queue likewise.</summary>
        public int MaxPendingBytes { get; set; } = 4 << 20;

        /// <summary>
        /// Bytes of payload that may queue in all sessions together; past it, sessions that already hold
        /// queued bytes stop reading their clients until others drain. Default: a quarter of the memory
        /// available to the process, at most 1 GiB.
        /// </summary>
        public long? MaxPendingBytesTotal { get; set; }

        /// <summary>The server-wide queue bound in force: <see cref="MaxPendingBytesTotal"/> or its default.</summary>
        internal long PendingBytesTotal() =>
            MaxPendingBytesTotal ?? Math.Min(1L << 30, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4);

        /// <summary>
        /// Seconds between the keep-alive frames sent to every client. A client whose machine has gone
        /// answers one with a reset, which ends its session even while it is held back.
        /// </summary>
        public int KeepAliveSeconds { get; set; } = 15;

        /// <summary>
        /// TCP connections held at once, on all listeners (silent ones included); past it the oldest silent
        /// connection is closed to make room, or the new one is. Default: from the process's file descriptor limit.
        /// </summary>
        public int? MaxConnections { get; set; }

        /// <summary>Sessions open at once; one more gets HTTP 503.</summary>
        public int MaxSessions { get; set; } = 10_000;

        /// <summary>Sessions open at once from one client IP address; one more gets HTTP 503.</summary>
        public int MaxSessionsPerClient { get; set; } = 256;

        /// <summary>Seconds without a frame either way before a session is closed (1000); 0: never.</summary>
        public int IdleTimeoutSeconds { get; set; } = 3600;

        /// <summary>Seconds a connection may take from its first byte (or TLS handshake) to a complete upgrade request.</summary>
        public int HandshakeTimeoutSeconds { get; set; } = 10;

        /// <summary>
        /// Peer connections (TCP, UDP, Unix, SSH channels) one client address may hold at once, over all its sessions and
        /// Wisp streams; one more connect fails (code 2; Wisp CLOSE 0x49).
        /// </summary>
        public int MaxPeerConnectionsPerClient { get; set; } = 512;

        /// <summary>Connects one session may start per second; more get code 2. 0: no limit.</summary>
        public int MaxConnectsPerSecond { get; set; } = 10;

        /// <summary>
        /// Host names one client address may have this server look up per second, over all its sessions and Wisp streams (a
        /// Wisp connection opens up to <c>wisp.maxStreamOpensPerSecond</c> streams a second, each to a name of its choosing);
        /// past it a connect to a name fails without a lookup (code 2; Wisp CLOSE 0x49). Addresses and <c>localhost</c> need
        /// none. 0: no limit.
        /// </summary>
        public int MaxLookupsPerClientPerSecond { get; set; } = 50;
    }
}
