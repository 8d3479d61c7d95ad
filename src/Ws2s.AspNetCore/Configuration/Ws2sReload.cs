using System.Text.Json;
using Ws2s.AspNetCore.Admission;
using Ws2s.AspNetCore.Sessions;
using Ws2s.AspNetCore.Telemetry;
using Ws2s.AspNetCore.Websockify;

namespace Ws2s.AspNetCore.Configuration;

/// <summary>What a reload did: the problems that kept the old configuration, and the keys that changed but need a restart.</summary>
public sealed record ReloadOutcome(IReadOnlyList<string> Problems, IReadOnlyList<string> NeedRestart);

/// <summary>
/// Applies a new configuration to a running server without dropping anyone: destination rules,
/// origins, tokens, signed-token keys, raw targets, TLS trust and session limits apply to new
/// sessions and new connects at once; sessions in progress go on. A configuration with problems is
/// refused whole (the old one stays). Keys that shape the listeners or the server's fixed resources
/// are reported as needing a restart.
/// </summary>
public sealed class Ws2sReload
{
    private readonly Ws2sOptions _current;
    private readonly AdmissionPolicy _admission;
    private readonly RawTargets _rawTargets;
    private readonly RunnerServices _runners;
    private readonly RedactedSecrets _secrets;
    private readonly Lock _gate = new();

    internal Ws2sReload(Ws2sOptions current, AdmissionPolicy admission, RawTargets rawTargets, RunnerServices runners, RedactedSecrets secrets) =>
        (_current, _admission, _rawTargets, _runners, _secrets) = (current, admission, rawTargets, runners, secrets);

    public ReloadOutcome Apply(Ws2sOptions next)
    {
        var problems = next.Problems().ToList();
        if (problems.Count > 0) return new(problems, []);
        lock (_gate)
        {
            var restart = NeedRestart(_current, next).ToList();
            _current.AllowConnectToServerLocal = next.AllowConnectToServerLocal;
            _current.Destinations = next.Destinations;
            _current.Origins = next.Origins;
            _current.AllowedHosts = next.AllowedHosts;
            _current.Tokens = next.Tokens;
            _current.TokensFile = next.TokensFile;
            _current.Auth = next.Auth;
            _current.Tls = next.Tls;
            _current.RawTargets = next.RawTargets;
            _current.RawTokenFile = next.RawTokenFile;
            _current.Ssh.AllowTargets = next.Ssh.AllowTargets;
            // Fixed at start (the connection gate, the queue budget): kept, and reported above.
            next.Limits.MaxConnections = _current.Limits.MaxConnections;
            next.Limits.MaxPendingBytesTotal = _current.Limits.MaxPendingBytesTotal;
            next.Limits.HandshakeTimeoutSeconds = _current.Limits.HandshakeTimeoutSeconds;
            _current.Limits = next.Limits;
            _secrets.Replace(TokenCheck.Configured(_current));
            _rawTargets.Update(_current.RawTargets, _current.RawTokenFile);
            _runners.Tls = new Connectors.TlsTrust(_current.Tls.TrustedCertificates);
            _admission.Reload();
            return new([], restart);
        }
    }

    private static IEnumerable<string> NeedRestart(Ws2sOptions now, Ws2sOptions next)
    {
        static bool Same(object? a, object? b) => JsonSerializer.Serialize(a) == JsonSerializer.Serialize(b);
        if (!Same(now.Listen, next.Listen)) yield return "listen";
        if (!Same(now.Endpoints, next.Endpoints)) yield return "endpoints";
        if (!Same(now.Management, next.Management)) yield return "management";
        if (!Same(now.TrustedProxies, next.TrustedProxies)) yield return "trustedProxies";
        if (now.ShutdownTimeoutSeconds != next.ShutdownTimeoutSeconds) yield return "shutdownTimeoutSeconds";
        if (now.Ssh.KnownHosts != next.Ssh.KnownHosts || now.Ssh.AcceptUnknownHostKeys != next.Ssh.AcceptUnknownHostKeys
            || now.Ssh.TimeoutSeconds != next.Ssh.TimeoutSeconds || now.Ssh.MaxSessionsPerClient != next.Ssh.MaxSessionsPerClient
            || now.Ssh.MaxKdfRounds != next.Ssh.MaxKdfRounds)
            yield return "ssh (all but allowTargets)";
        if (now.Limits.MaxConnections != next.Limits.MaxConnections) yield return "limits.maxConnections";
        if (now.Limits.MaxPendingBytesTotal != next.Limits.MaxPendingBytesTotal) yield return "limits.maxPendingBytesTotal";
        if (now.Limits.HandshakeTimeoutSeconds != next.Limits.HandshakeTimeoutSeconds) yield return "limits.handshakeTimeoutSeconds";
    }
}
