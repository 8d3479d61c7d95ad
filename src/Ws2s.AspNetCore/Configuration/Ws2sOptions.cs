using System.Net;
using Microsoft.FSharp.Collections;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Configuration;

/// <summary>The ws2s configuration file (<c>~/.ws2s/config.json</c>), bound from configuration.</summary>
public sealed partial class Ws2sOptions
{
    public HostAndPort Listen { get; set; } = new();

    /// <summary>More endpoints beside <see cref="Listen"/>, each optionally with TLS (wss://).</summary>
    public List<EndpointOptions> Endpoints { get; set; } = [];

    /// <summary>When set, /metrics, /healthz and /readyz are served only on this endpoint.</summary>
    public HostAndPort? Management { get; set; }

    /// <summary>Seconds a stopping server gives its sessions to close before it cuts them off.</summary>
    public int ShutdownTimeoutSeconds { get; set; } = 10;

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

    /// <summary>Targets of the websockify endpoint by name: <c>{"vnc": "127.0.0.1:5901"}</c>.</summary>
    public Dictionary<string, string> RawTargets { get; set; } = [];

    /// <summary>A websockify token file (<c>NAME: HOST:PORT</c> per line), re-read when it changes.</summary>
    public string? RawTokenFile { get; set; }

    public sealed class HostAndPort
    {
        public string Host { get; set; } = "127.0.0.1";
        public int Port { get; set; } = 3613;
    }

    public sealed class EndpointOptions
    {
        public string Host { get; set; } = "127.0.0.1";
        public int Port { get; set; }

        /// <summary>PEM certificate (chain) file; with <see cref="Key"/>, the endpoint speaks TLS.</summary>
        public string? Certificate { get; set; }

        /// <summary>PEM private key file for <see cref="Certificate"/>.</summary>
        public string? Key { get; set; }

        /// <summary>A PKCS#12 (.pfx) file instead of PEM files.</summary>
        public string? Pfx { get; set; }

        public string? PfxPassword { get; set; }

        public bool UsesTls => Certificate is not null || Pfx is not null;

        public IPAddress? Address() => ParseHost(Host);
    }

    public sealed class SshOptions
    {
        /// <summary>An OpenSSH known_hosts file: an SSH server's key must be listed there.</summary>
        public string? KnownHosts { get; set; }

        /// <summary>Accept any host key (insecure: for trying things out only; logged as a warning).</summary>
        public bool AcceptUnknownHostKeys { get; set; }

        /// <summary>Rules for the final host:port reached from the SSH server; empty: any.</summary>
        public List<string> AllowTargets { get; set; } = [];

        /// <summary>Seconds to log in and open the channel.</summary>
        public int TimeoutSeconds { get; set; } = 10;

        /// <summary>SSH sessions one client address may hold at once (tunnels over the same login share one).</summary>
        public int MaxSessionsPerClient { get; set; } = 8;

        /// <summary>
        /// The most key-derivation work a client's encrypted private key may ask for, in bcrypt rounds
        /// (OpenSSH's default is 16; PKCS#8 PBKDF2 counts 10,000 iterations a round). A costlier key is refused before decrypting.
        /// </summary>
        public int MaxKdfRounds { get; set; } = 64;
    }

    /// <summary>Signed access tokens (JWT) that may also narrow what a session reaches.</summary>
    public AuthOptions Auth { get; set; } = new();

    public sealed class AuthOptions
    {
        public JwtOptions? Jwt { get; set; }
    }

    /// <summary>
    /// <c>auth.jwt</c>: tokens presented like the static ones (<c>?token=</c> or a <c>token.</c>
    /// subprotocol entry), signed with HS256 (<see cref="SecretFile"/>) or RS256/ES256
    /// (<see cref="PublicKeysFile"/> PEM, or <see cref="JwksFile"/>); key files are read again when they change.
    /// </summary>
    public sealed class JwtOptions
    {
        /// <summary>A file holding the HS256 shared secret (at least 32 bytes; surrounding whitespace ignored).</summary>
        public string? SecretFile { get; set; }

        /// <summary>A PEM file of RSA and/or EC public keys (RS256, ES256).</summary>
        public string? PublicKeysFile { get; set; }

        /// <summary>A JWKS file (<c>{"keys": [...]}</c>) of RSA and/or EC public keys.</summary>
        public string? JwksFile { get; set; }

        /// <summary>When set, the token's <c>iss</c> must equal it.</summary>
        public string? Issuer { get; set; }

        /// <summary>When set, the token's <c>aud</c> must contain it.</summary>
        public string? Audience { get; set; }

        /// <summary>Leeway for <c>exp</c> and <c>nbf</c> between this server's clock and the issuer's.</summary>
        public int ClockSkewSeconds { get; set; } = 30;

        /// <summary>The claim holding ws2s's own claims (<c>allow</c>, <c>maxSessions</c>, <c>ssh</c>).</summary>
        public string ClaimNamespace { get; set; } = "ws2s";
    }

    /// <summary>TLS to destinations (<c>"tls": true</c> on connect, <c>starttls</c>).</summary>
    public TlsOptions Tls { get; set; } = new();

    public sealed class TlsOptions
    {
        /// <summary>PEM files of extra certificate authorities (a private CA), trusted beside the system's.</summary>
        public List<string> TrustedCertificates { get; set; } = [];

        /// <summary>Destination rules reachable only with <c>"tls": true</c> (code 4 otherwise).</summary>
        public List<string> Required { get; set; } = [];

        /// <summary>Certificate pins by destination rule.</summary>
        public List<PinOptions> Pinned { get; set; } = [];
    }

    /// <summary>
    /// A destination rule and the certificates it accepts: base64 SHA-256 of the certificate (DER) or
    /// of its public key (SubjectPublicKeyInfo). A list of objects, not a map: rules hold ':', which
    /// configuration keys cannot.
    /// </summary>
    public sealed class PinOptions
    {
        public string Rule { get; set; } = "";
        public List<string> Sha256 { get; set; } = [];
    }

    public sealed class DestinationOptions
    {
        public List<string> Allow { get; set; } = [];
        public List<string> Deny { get; set; } = [];
    }

    public sealed class LimitOptions
    {
        /// <summary>Resolve plus dial must finish within this many seconds (code 2 otherwise).</summary>
        public int ConnectTimeoutSeconds { get; set; } = 10;

        /// <summary>The largest WebSocket message a client may send; a larger one closes the session with 1009.</summary>
        public int MaxMessageBytes { get; set; } = 1 << 20;

        /// <summary>Seconds a message begun may go without a byte of it arriving; past that the session is closed (1008). A slow but steady upload is never cut.</summary>
        public int MessageTimeoutSeconds { get; set; } = 30;

        /// <summary>Requests that may queue behind a pending connect or write before the host stops reading the client.</summary>
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
        public long PendingBytesTotal() =>
            MaxPendingBytesTotal ?? Math.Min(1L << 30, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4);

        /// <summary>
        /// Seconds between the keep-alive frames sent to every client. A client whose host has gone
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

        /// <summary>Connects one session may start per second; more get code 2. 0: no limit.</summary>
        public int MaxConnectsPerSecond { get; set; } = 10;
    }

    public IPAddress? ListenAddress() => ParseHost(Listen.Host);

    private static IPAddress? ParseHost(string host) =>
        host.Equals("localhost", StringComparison.OrdinalIgnoreCase) ? IPAddress.Loopback
        : IPAddress.TryParse(host, out var address) ? address
        : null;

    /// <summary>The settings the protocol core runs each session with (call after <see cref="Problems"/> is empty).</summary>
    public Session.Settings ToSessionSettings(IEnumerable<IPEndPoint> ownEndpoints, IEnumerable<IPAddress> localAddresses)
    {
        static FSharpList<Policy.Rule> Rules(IEnumerable<string> texts) =>
            ListModule.OfSeq(texts.Select(t => Policy.parseRule(t).ResultValue));
        var pins = ListModule.OfSeq(Tls.Pinned.Select(p =>
            Tuple.Create(Policy.parseRule(p.Rule).ResultValue, ListModule.OfSeq(p.Sha256.Select(Connectors.TlsTrust.NormalizePin)))));
        var policy = new Policy.DestinationPolicy(
            AllowConnectToServerLocal, Rules(Destinations.Allow), Rules(Destinations.Deny), ListModule.OfSeq(ownEndpoints),
            ListModule.OfSeq(localAddresses), FSharpList<FSharpList<Policy.Rule>>.Empty, Rules(Tls.Required), pins);
        return new Session.Settings(
            policy,
            Limits.ConnectTimeoutSeconds,
            Limits.MaxPendingRequests,
            Limits.MaxPendingBytes,
            Limits.IdleTimeoutSeconds,
            Limits.MessageTimeoutSeconds,
            Limits.MaxConnectsPerSecond,
            Rules(Ssh.AllowTargets),
            true,
            Session.defaultSettings.AttemptDelayMilliseconds);
    }
}
