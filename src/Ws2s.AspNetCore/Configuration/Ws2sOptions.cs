namespace Ws2s.AspNetCore.Configuration;

/// <summary>
/// What ws2s reads from configuration (ws2sd's <c>~/.ws2s/config.json</c>, or an app's <c>"Ws2s"</c> section):
/// destinations, admission, limits, SSH, TLS to destinations. Where a server listens is the application's business
/// (ws2sd's own options, or the app's Kestrel). Bound, validated at start, and taken up whole on reload.
/// </summary>
public sealed partial class Ws2sOptions
{
    /// <summary>The original's switch: may sessions dial this machine itself (loopback, 0.0.0.0, ::)?</summary>
    public bool AllowConnectToServerLocal { get; set; }

    public DestinationOptions Destinations { get; set; } = new();

    /// <summary>
    /// Page origins allowed to open a session (<c>https://app.example.com</c>, <c>http://localhost:*</c>,
    /// or <c>*</c> for any). Empty: this server's own origin and http(s)://localhost, 127.0.0.1, [::1] on any port.
    /// </summary>
    public List<string> Origins { get; set; } = [];

    /// <summary>
    /// Host names this server answers to besides IP addresses, <c>localhost</c> and the listen host
    /// (<c>ws2s.example.com</c>, <c>*.example.com</c>, or <c>*</c> for any): a request naming another host
    /// gets 421, against DNS rebinding.
    /// </summary>
    public List<string> AllowedHosts { get; set; } = [];

    /// <summary>
    /// Load balancers and reverse proxies (addresses or CIDR networks) whose PROXY protocol header or
    /// X-Forwarded-For names the client. Empty: the TCP peer is the client, and such headers are ignored.
    /// </summary>
    public List<string> TrustedProxies { get; set; } = [];

    /// <summary>Access tokens; when any is configured, every session must present one.</summary>
    public List<string> Tokens { get; set; } = [];

    /// <summary>A file with one token per line (blank lines and # comments ignored), read at start.</summary>
    public string? TokensFile { get; set; }

    public LimitOptions Limits { get; set; } = new();

    public SshOptions Ssh { get; set; } = new();

    /// <summary>
    /// Targets of the websockify endpoint by name: <c>{"vnc": "127.0.0.1:5901"}</c>. Named after its config key
    /// <c>rawTargets</c> (websockify's "raw" endpoint), which users' files carry, so it keeps that name.
    /// </summary>
    public Dictionary<string, string> RawTargets { get; set; } = [];

    /// <summary>A websockify token file (<c>NAME: HOST:PORT</c> per line), re-read when it changes (config key <c>rawTokenFile</c>).</summary>
    public string? RawTokenFile { get; set; }

    /// <summary>
    /// Problems of the configuration's keys, found before binding (a key nothing reads, a value of the wrong kind): options
    /// that have any were not bound, and are refused with these words. Not a key itself (internal: never bound).
    /// </summary>
    internal IReadOnlyList<string> KeyProblems { get; set; } = [];

    public sealed class DestinationOptions
    {
        public List<string> Allow { get; set; } = [];
        public List<string> Deny { get; set; } = [];
    }
}
