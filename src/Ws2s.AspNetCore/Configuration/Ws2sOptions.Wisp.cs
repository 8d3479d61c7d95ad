namespace Ws2s.AspNetCore.Configuration;

/// <summary>
/// <c>wisp</c> and <c>wsproxy</c>: the endpoints Wisp clients (wisp-js, libcurl.js, epoxy) use: Wisp, many TCP
/// streams over one WebSocket; wsproxy, one WebSocket per connection, its target in the URL. spec/wisp.md.
/// </summary>
public sealed partial class Ws2sOptions
{
    /// <summary>The wsproxy endpoint: <c>ws://server/PATH/host:port</c>, binary frames relayed to host:port.</summary>
    public WsproxyOptions Wsproxy { get; set; } = new();

    public sealed class WsproxyOptions
    {
        /// <summary>
        /// Where ws2sd serves wsproxy (a path ending in <c>/</c>; the target follows it); empty, the default: not served.
        /// Each target is judged by the destination policy like any connect. Read at start.
        /// </summary>
        public string Path { get; set; } = "";

        internal string? PathProblem() => Ws2sOptions.PathProblem("wsproxy.path", Path, "to serve no wsproxy");
    }

    /// <summary>Why <paramref name="path"/> (the value of <paramref name="key"/>) cannot be an endpoint's prefix, or null.</summary>
    private static string? PathProblem(string key, string path, string emptyMeans) =>
        path.Length == 0 || (path.StartsWith('/') && path.EndsWith('/') && !path.Contains("//") && !path.Contains('{') && !path.Contains('?'))
            ? null
            : $"{key} '{path}' must be a path that starts and ends with '/' (e.g. /wisp/), or empty {emptyMeans}";

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
        internal string? PathProblem() => Ws2sOptions.PathProblem("wisp.path", Path, "to serve no Wisp");
    }
}
