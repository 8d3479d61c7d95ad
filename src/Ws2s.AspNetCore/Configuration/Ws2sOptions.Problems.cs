using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Configuration;

/// <summary>The options' validation: every key checked at start, each problem naming the key to fix.</summary>
public sealed partial class Ws2sOptions
{
    /// <summary>
    /// The numeric keys by their name in the config: the value (null when unset: a default that needs no check) and the
    /// numbers accepted (also said when a value is not a number at all).
    /// </summary>
    internal static readonly IReadOnlyDictionary<string, (Func<Ws2sOptions, long?> Value, long Low, long High)> Bounds =
        new Dictionary<string, (Func<Ws2sOptions, long?>, long, long)>(StringComparer.OrdinalIgnoreCase)
    {
        ["auth.jwt.clockSkewSeconds"] = (o => o.Auth.Jwt?.ClockSkewSeconds, 0, 3600),
        ["limits.maxPendingBytesTotal"] = (o => o.Limits.MaxPendingBytesTotal, 1024, long.MaxValue),
        ["limits.connectTimeoutSeconds"] = (o => o.Limits.ConnectTimeoutSeconds, 1, 3600),
        ["limits.maxMessageBytes"] = (o => o.Limits.MaxMessageBytes, 1024, 64 << 20),
        ["limits.messageTimeoutSeconds"] = (o => o.Limits.MessageTimeoutSeconds, 1, 3600),
        ["limits.maxPendingRequests"] = (o => o.Limits.MaxPendingRequests, 1, 4096),
        ["limits.maxPendingBytes"] = (o => o.Limits.MaxPendingBytes, 1024, 1 << 30),
        ["limits.maxConnections"] = (o => o.Limits.MaxConnections, 16, 1_000_000),
        ["limits.keepAliveSeconds"] = (o => o.Limits.KeepAliveSeconds, 1, 3600),
        ["limits.maxSessions"] = (o => o.Limits.MaxSessions, 1, 1_000_000),
        ["limits.maxSessionsPerClient"] = (o => o.Limits.MaxSessionsPerClient, 1, 1_000_000),
        ["limits.idleTimeoutSeconds"] = (o => o.Limits.IdleTimeoutSeconds, 0, 1_000_000),
        ["limits.handshakeTimeoutSeconds"] = (o => o.Limits.HandshakeTimeoutSeconds, 1, 3600),
        ["limits.maxPeerConnectionsPerClient"] = (o => o.Limits.MaxPeerConnectionsPerClient, 1, 1_000_000),
        ["limits.maxConnectsPerSecond"] = (o => o.Limits.MaxConnectsPerSecond, 0, 1_000_000),
        ["limits.maxLookupsPerClientPerSecond"] = (o => o.Limits.MaxLookupsPerClientPerSecond, 0, 1_000_000),
        ["ssh.timeoutSeconds"] = (o => o.Ssh.TimeoutSeconds, 1, 3600),
        ["ssh.maxSessionsPerClient"] = (o => o.Ssh.MaxSessionsPerClient, 1, 10_000),
        ["ssh.maxKdfRounds"] = (o => o.Ssh.MaxKdfRounds, 1, 10_000),
        ["resume.graceSeconds"] = (o => o.Resume.GraceSeconds, 0, 86_400),
        ["resume.maxBufferedBytes"] = (o => o.Resume.MaxBufferedBytes, 1024, 1 << 30),
        ["resume.maxBufferedBytesTotal"] = (o => o.Resume.MaxBufferedBytesTotal, 1024, long.MaxValue),
        ["resume.maxAttemptsPerMinute"] = (o => o.Resume.MaxAttemptsPerMinute, 1, 1_000_000),
        ["udp.maxPacketsPerSecond"] = (o => o.Udp.MaxPacketsPerSecond, 1, 1_000_000),
        ["udp.maxBytesPerSecond"] = (o => o.Udp.MaxBytesPerSecond, 1024, int.MaxValue),
        ["wisp.bufferPackets"] = (o => o.Wisp.BufferPackets, 1, 65_536),
        ["wisp.maxStreams"] = (o => o.Wisp.MaxStreams, 1, 1_000_000),
        ["wisp.maxStreamOpensPerSecond"] = (o => o.Wisp.MaxStreamOpensPerSecond, 0, 1_000_000),
    };

    /// <summary>Every problem with these options, each naming the key to fix.</summary>
    internal IEnumerable<string> Problems()
    {
        if (KeyProblems.Count > 0)
        {
            foreach (var problem in KeyProblems) yield return problem;
            yield break;
        }
        foreach (var (key, rules) in new[] { ("destinations.allow", Destinations.Allow), ("destinations.deny", Destinations.Deny), ("ssh.allowTargets", Ssh.AllowTargets), ("tls.required", Tls.Required), ("udp.allow", Udp.Allow) })
            for (var i = 0; i < rules.Count; i++)
                if (Policy.parseRule(rules[i]) is { IsError: true } error)
                    yield return $"{key}[{i}]: {error.ErrorValue}";
        if (Auth.Jwt is { } jwt)
        {
            if (jwt.SecretFile is null && jwt.PublicKeysFile is null && jwt.JwksFile is null)
                yield return "auth.jwt: give secretFile (HS256), publicKeysFile (PEM) or jwksFile";
            foreach (var (key, file) in new[] { ("secretFile", jwt.SecretFile), ("publicKeysFile", jwt.PublicKeysFile), ("jwksFile", jwt.JwksFile) })
                if (file is not null && Admission.JwtCheck.KeyFileProblem(key, file) is { } problem)
                    yield return $"auth.jwt.{key}: {problem}";
            if (string.IsNullOrWhiteSpace(jwt.ClaimNamespace))
                yield return "auth.jwt.claimNamespace must not be empty";
        }
        for (var i = 0; i < Tls.Pinned.Count; i++)
        {
            if (Policy.parseRule(Tls.Pinned[i].Rule) is { IsError: true } error)
                yield return $"tls.pinned[{i}].rule: {error.ErrorValue}";
            if (Tls.Pinned[i].Sha256.Count == 0)
                yield return $"tls.pinned[{i}].sha256: give at least one pin (base64 SHA-256 of a certificate or its public key)";
            foreach (var pin in Tls.Pinned[i].Sha256)
                if (!Connectors.TlsTrust.IsPin(pin))
                    yield return $"tls.pinned[{i}].sha256: '{pin}' is not a base64 SHA-256 (44 characters)";
        }
        for (var i = 0; i < Tls.TrustedCertificates.Count; i++)
            if (Connectors.TlsTrust.LoadProblem(Tls.TrustedCertificates[i]) is { } problem)
                yield return $"tls.trustedCertificates[{i}]: {problem}";
        for (var i = 0; i < Origins.Count; i++)
            if (Admission.OriginPolicy.Problem(Origins[i]) is { } problem)
                yield return $"origins[{i}]: {problem}";
        for (var i = 0; i < AllowedHosts.Count; i++)
            if (Admission.AllowedHosts.Problem(AllowedHosts[i]) is { } problem)
                yield return $"allowedHosts[{i}]: {problem}";
        for (var i = 0; i < TrustedProxies.Count; i++)
            if (Admission.TrustedProxies.Parse(TrustedProxies[i]) is null)
                yield return $"trustedProxies[{i}] '{TrustedProxies[i]}' is not an IP address or network (10.0.0.0/8, fd00::/8)";
        foreach (var (name, target) in RawTargets)
            if (Websockify.WebsockifyTargets.Parse(target) is null)
                yield return $"rawTargets.{name}: '{target}' is not HOST:PORT";
        if (Resume.Instance is { } instance && !Sessions.ResumeRegistry.InstanceName().IsMatch(instance))
            yield return $"resume.instance '{instance}' must be 1-32 letters, digits or '-' (it appears in resume tokens and URLs)";
        if (Ssh.KnownHosts is not null && !File.Exists(Ssh.KnownHosts))
            yield return $"ssh.knownHosts '{Ssh.KnownHosts}' does not exist";
        for (var i = 0; i < Tokens.Count; i++)
            if (string.IsNullOrWhiteSpace(Tokens[i]))
                yield return $"tokens[{i}] is empty: an empty token would be no token at all (remove it, or give a secret)";
        if (TokensFile is not null && !File.Exists(TokensFile))
            yield return $"tokensFile '{TokensFile}' does not exist";
        else if (TokensFile is not null && !Admission.TokenCheck.ReadFile(TokensFile).Any())
            yield return $"tokensFile '{TokensFile}' holds no token (one per line; blank lines and # comments are ignored)";
        if (Wisp.PathProblem() is { } wispPath)
            yield return wispPath;
        if (Wsproxy.PathProblem() is { } wsproxyPath)
            yield return wsproxyPath;
        foreach (var (key, (value, low, high)) in Bounds)
            if (value(this) is { } number && (number < low || number > high))
                yield return high == long.MaxValue ? $"{key} {number} must be at least {low}" : $"{key} {number} must be between {low} and {high}";
    }
}
