using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Ws2s.AspNetCore.Configuration;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Admission;

/// <summary>
/// What a valid signed token grants: who (<c>sub</c>), the destinations it narrows the session to
/// (<c>allow</c>: rules in <c>destinations.allow</c>'s syntax; null: no narrowing), how many sessions
/// that subject may hold, whether SSH tunnels are allowed, and (for the websockify endpoint) the
/// target its <c>host</c> and <c>port</c> claims name. <c>Expires</c>: the token's <c>exp</c>, after which the
/// session it opened may start no new connects.
/// </summary>
internal sealed record JwtGrant(string? Subject, IReadOnlyList<Policy.Rule>? Allow, int? MaxSessions, bool Ssh, (string Host, int Port)? Target,
    DateTimeOffset? Expires = null);

/// <summary>
/// Verifies JWTs with Microsoft.IdentityModel: HS256 with the shared secret, RS256/ES256 with the
/// configured public keys (PEM or JWKS), each file read again when it changes. <c>exp</c> is
/// required and checked with <c>nbf</c> (with the configured clock skew); <c>iss</c> and <c>aud</c>
/// when configured. Unsigned tokens, algorithms the keys are not for, and tokens with critical header
/// parameters (<c>crit</c>, RFC 7515 §4.1.11: the server understands none) are refused. Refusals are
/// words ("token expired"), never the token.
/// </summary>
internal sealed partial class JwtCheck
{
    private readonly Ws2sOptions.JwtOptions _options;
    private readonly JsonWebTokenHandler _handler = new();
    private readonly Lock _gate = new();

    /// <summary>The SHA-256 of the key files' contents the parameters were built from: a change is known by content, not by time stamps.</summary>
    private string? _loadedDigest;
    private TokenValidationParameters? _parameters;

    /// <summary>The server's clock: a token's lifetime is judged by it (as every other time decision), not by the machine's.</summary>
    private readonly TimeProvider _time;

    public JwtCheck(Ws2sOptions.JwtOptions options, TimeProvider time) => (_options, _time) = (options, time);

    /// <summary>Validates <paramref name="token"/>: the grant, or the words of the refusal.</summary>
    public async Task<(JwtGrant? Grant, string? Refusal)> ValidateAsync(string token)
    {
        if (!_handler.CanReadToken(token)) return (null, "not a valid token");
        JsonWebToken read;
        try
        {
            read = _handler.ReadJsonWebToken(token);
        }
        catch (ArgumentException)
        {
            return (null, "not a valid token");
        }
        if (read.Alg is null || read.Alg.Equals("none", StringComparison.OrdinalIgnoreCase)) return (null, "unsigned token");
        if (read.TryGetHeaderValue<object>("crit", out _)) return (null, "token has critical header parameters the server does not understand (crit)");
        TokenValidationParameters parameters;
        try
        {
            parameters = Parameters();
        }
        catch (Exception e) when (e is IOException or CryptographicException or ArgumentException or JsonException or UnauthorizedAccessException)
        {
            return (null, "the server cannot read its token keys");
        }
        var result = await _handler.ValidateTokenAsync(token, parameters);
        if (!result.IsValid) return (null, Words(result.Exception));
        return Claims((JsonWebToken)result.SecurityToken);
    }

    private static string Words(Exception? e) => e switch
    {
        SecurityTokenExpiredException => "token expired",
        SecurityTokenNotYetValidException => "token not yet valid",
        SecurityTokenNoExpirationException => "token has no expiry (exp)",
        SecurityTokenInvalidAudienceException => "wrong audience",
        SecurityTokenInvalidIssuerException => "wrong issuer",
        SecurityTokenInvalidAlgorithmException => "signing algorithm not accepted",
        SecurityTokenSignatureKeyNotFoundException or SecurityTokenInvalidSignatureException => "bad signature",
        SecurityTokenMalformedException => "not a valid token",
        _ => "token refused",
    };

    /// <summary>The grant in the token's claims; a claim in the wrong shape refuses the token (its issuer has a bug).</summary>
    private (JwtGrant?, string?) Claims(JsonWebToken token)
    {
        using var payload = JsonDocument.Parse(Base64UrlEncoder.DecodeBytes(token.EncodedPayload));
        var root = payload.RootElement;
        var ns = _options.ClaimNamespace;
        List<Policy.Rule>? allow = null;
        int? maxSessions = null;
        var ssh = true;
        if (root.TryGetProperty(ns, out var mine))
        {
            if (mine.ValueKind != JsonValueKind.Object) return (null, $"token claim {ns} must be an object");
            if (mine.TryGetProperty("allow", out var rules))
            {
                if (rules.ValueKind != JsonValueKind.Array) return (null, $"token claim {ns}.allow must be a list of rules");
                allow = [];
                var i = 0;
                foreach (var text in rules.EnumerateArray())
                {
                    if (text.ValueKind != JsonValueKind.String || Policy.parseRule(text.GetString()!) is not { IsOk: true } parsed)
                        return (null, $"token claim {ns}.allow[{i}] is not a destination rule");
                    allow.Add(parsed.ResultValue);
                    i++;
                }
            }
            if (mine.TryGetProperty("maxSessions", out var max))
            {
                if (max.ValueKind != JsonValueKind.Number || !max.TryGetInt32(out var n) || n < 1)
                    return (null, $"token claim {ns}.maxSessions must be a whole number from 1");
                maxSessions = n;
            }
            if (mine.TryGetProperty("ssh", out var tunnels))
            {
                if (tunnels.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) return (null, $"token claim {ns}.ssh must be true or false");
                ssh = tunnels.GetBoolean();
            }
        }
        (string, int)? target = null;
        if (root.TryGetProperty("host", out var host) && host.ValueKind == JsonValueKind.String
            && root.TryGetProperty("port", out var port) && port.TryGetInt32(out var p) && p is >= 1 and <= 65535)
            target = (host.GetString()!, p);
        var subject = string.IsNullOrEmpty(token.Subject) ? null : token.Subject;
        // A limit per subject needs a subject: without one it would count nobody, and not hold.
        if (maxSessions is not null && subject is null) return (null, $"token claim {ns}.maxSessions needs a subject (sub) to count sessions by");
        // Connects end when admission would refuse the token: at exp plus the same clock skew.
        var expires = new DateTimeOffset(token.ValidTo, TimeSpan.Zero) + TimeSpan.FromSeconds(_options.ClockSkewSeconds);
        return (new JwtGrant(subject, allow, maxSessions, ssh, target, expires), null);
    }
}
