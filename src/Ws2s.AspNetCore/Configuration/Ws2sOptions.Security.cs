namespace Ws2s.AspNetCore.Configuration;

/// <summary><c>ssh</c>, <c>auth</c> and <c>tls</c>: logins through SSH servers, signed access tokens, and TLS to destinations.</summary>
public sealed partial class Ws2sOptions
{
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

        /// <summary>SSH logins one client address may hold at once (tunnels over the same login share one); config key <c>ssh.maxSessionsPerClient</c>, named before logins were called logins.</summary>
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
}
