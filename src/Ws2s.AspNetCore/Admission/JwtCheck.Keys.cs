using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.Tokens;

namespace Ws2s.AspNetCore.Admission;

/// <summary>The keys signed tokens are checked with: read from <c>auth.jwt</c>'s files, and read again when their content changes.</summary>
internal sealed partial class JwtCheck
{
    /// <summary>Why a key file cannot be used, or null.</summary>
    public static string? KeyFileProblem(string key, string file)
    {
        if (!File.Exists(file)) return $"'{file}' does not exist";
        try
        {
            var keys = key switch
            {
                "secretFile" => Secrets(file),
                "publicKeysFile" => PemKeys(file),
                _ => JwksKeys(file),
            };
            return keys.Count == 0 ? $"'{file}' holds no usable key" : null;
        }
        catch (Exception e) when (e is IOException or CryptographicException or ArgumentException or JsonException or UnauthorizedAccessException)
        {
            return $"'{file}' cannot be used: {e.Message}";
        }
    }

    /// <summary>
    /// The token's lifetime judged by the server's clock (<see cref="_time"/>), with the configured skew: the library's own
    /// check reads the machine's clock, which no test can move and no embedding app can replace.
    /// </summary>
    private bool Lifetime(DateTime? notBefore, DateTime? expires, SecurityToken token, TokenValidationParameters parameters)
    {
        var now = _time.GetUtcNow().UtcDateTime;
        if (expires is null) throw new SecurityTokenNoExpirationException("the token has no expiry");
        if (notBefore > expires) throw new SecurityTokenInvalidLifetimeException("the token's nbf is after its exp") { NotBefore = notBefore, Expires = expires };
        if (now > expires.Value + parameters.ClockSkew)
            throw new SecurityTokenExpiredException("the token expired") { Expires = expires.Value };
        if (notBefore is { } from && now + parameters.ClockSkew < from)
            throw new SecurityTokenNotYetValidException("the token is not valid yet") { NotBefore = from };
        return true;
    }

    /// <summary>The validation parameters, rebuilt when a key file has changed.</summary>
    private TokenValidationParameters Parameters()
    {
        var digest = Digest(_options.SecretFile, _options.PublicKeysFile, _options.JwksFile);
        lock (_gate)
        {
            if (_parameters is not null && digest == _loadedDigest) return _parameters;
            var keys = new List<SecurityKey>();
            var algorithms = new List<string>();
            if (_options.SecretFile is { } secret)
            {
                keys.AddRange(Secrets(secret));
                algorithms.Add(SecurityAlgorithms.HmacSha256);
            }
            if (_options.PublicKeysFile is { } pem) keys.AddRange(PemKeys(pem));
            if (_options.JwksFile is { } jwks) keys.AddRange(JwksKeys(jwks));
            if (_options.PublicKeysFile is not null || _options.JwksFile is not null)
                algorithms.AddRange([SecurityAlgorithms.RsaSha256, SecurityAlgorithms.EcdsaSha256]);
            _parameters = new TokenValidationParameters
            {
                IssuerSigningKeys = keys,
                ValidAlgorithms = algorithms,
                RequireSignedTokens = true,
                RequireExpirationTime = true,
                ValidateLifetime = true,
                LifetimeValidator = Lifetime,
                ClockSkew = TimeSpan.FromSeconds(_options.ClockSkewSeconds),
                ValidateIssuer = _options.Issuer is not null,
                ValidIssuer = _options.Issuer,
                ValidateAudience = _options.Audience is not null,
                ValidAudience = _options.Audience,
                TryAllIssuerSigningKeys = true,
            };
            _loadedDigest = digest;
            return _parameters;
        }
    }

    /// <summary>
    /// One digest of the key files' contents. Key files are small and read once per token: a rotation is
    /// seen whatever the file system says of its time (a copy that keeps the time stamp, a coarse clock).
    /// </summary>
    private static string Digest(params string?[] files)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var file in files)
        {
            hash.AppendData(file is null ? [0] : [1]);
            if (file is not null) hash.AppendData(File.ReadAllBytes(file));
        }
        return Convert.ToHexString(hash.GetHashAndReset());
    }

    /// <summary>
    /// The HS256 secret in <paramref name="file"/>, as issuers read it: its text without the surrounding white
    /// space (a line end an editor or <c>echo</c> added), and, when they differ, the file's exact bytes (what
    /// Node's <c>readFileSync</c> hands to <c>createHmac</c>). Both are the same secret; the 32-byte minimum
    /// is counted on the trimmed one, so padding never passes for strength.
    /// </summary>
    private static List<SecurityKey> Secrets(string file)
    {
        var exact = File.ReadAllBytes(file);
        var trimmed = Encoding.UTF8.GetBytes(File.ReadAllText(file).Trim());
        if (trimmed.Length < 32) throw new ArgumentException("an HS256 secret needs at least 32 bytes (not counting white space around it)");
        return exact.AsSpan().SequenceEqual(trimmed) ? [new SymmetricSecurityKey(trimmed)] : [new SymmetricSecurityKey(trimmed), new SymmetricSecurityKey(exact)];
    }

    private static List<SecurityKey> PemKeys(string file)
    {
        var keys = new List<SecurityKey>();
        var text = File.ReadAllText(file);
        var at = 0;
        while (PemEncoding.TryFind(text.AsSpan(at), out var fields))
        {
            var block = text.Substring(at + fields.Location.Start.Value, fields.Location.End.Value - fields.Location.Start.Value);
            at += fields.Location.End.Value;
            keys.Add(PemKey(block));
        }
        return keys;
    }

    /// <summary>One PEM public key (or certificate): RSA or EC.</summary>
    private static SecurityKey PemKey(string block)
    {
        if (block.Contains("CERTIFICATE", StringComparison.Ordinal))
            return new X509SecurityKey(System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(block));
        try
        {
            var rsa = RSA.Create();
            rsa.ImportFromPem(block);
            return new RsaSecurityKey(rsa);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            var ec = ECDsa.Create();
            ec.ImportFromPem(block);
            return new ECDsaSecurityKey(ec);
        }
    }

    private static List<SecurityKey> JwksKeys(string file) => [.. new JsonWebKeySet(File.ReadAllText(file)).GetSigningKeys()];
}
