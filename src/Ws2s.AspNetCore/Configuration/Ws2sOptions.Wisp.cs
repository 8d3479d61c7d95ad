namespace Ws2s.AspNetCore.Configuration;

/// <summary><c>wisp</c>: the Wisp endpoint (many TCP streams over one WebSocket; spec/wisp.md).</summary>
public sealed partial class Ws2sOptions
{
    /// <summary>The Wisp endpoint: where ws2sd serves it and what one Wisp connection may hold.</summary>
    public WispOptions Wisp { get; set; } = new();

    public sealed class WispOptions
    {
        /// <summary>
        /// Where ws2sd serves Wisp (a path ending in <c>/</c>, as Wisp clients expect); empty: not served. Read at start.
        /// The same admission applies as on the other endpoints (origins, tokens, signed tokens, quotas).
        /// </summary>
        public string Path { get; set; } = "/wisp/";

        /// <summary>DATA packets a stream may have queued for its peer: the credits each CONTINUE grants.</summary>
        public int BufferPackets { get; set; } = 128;

        /// <summary>Streams one Wisp connection may have open at once; one more is refused (CLOSE 0x49).</summary>
        public int MaxStreams { get; set; } = 256;

        /// <summary>Streams one Wisp connection may open per second; more are refused (CLOSE 0x49). 0: no limit.</summary>
        public int MaxStreamOpensPerSecond { get; set; } = 128;

        /// <summary>A message of the day for Wisp v2 clients (its MOTD extension), if any.</summary>
        public string? Motd { get; set; }

        /// <summary>Why <see cref="Path"/> cannot be served, or null.</summary>
        internal string? PathProblem() =>
            Path.Length == 0 || (Path.StartsWith('/') && Path.EndsWith('/') && !Path.Contains("//") && !Path.Contains('{') && !Path.Contains('?'))
                ? null
                : $"wisp.path '{Path}' must be a path that starts and ends with '/' (e.g. /wisp/), or empty to serve no Wisp";
    }
}
