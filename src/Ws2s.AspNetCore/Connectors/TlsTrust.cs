using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Ws2s.AspNetCore.Connectors;

/// <summary>
/// What a TLS connection to a destination trusts: the system's roots plus the operator's extra CAs
/// (<c>tls.trustedCertificates</c>), a certificate for the server name, in its validity period, and
/// one of the destination's pins when it has any. There is no way to turn validation off. Nothing is
/// fetched from the network while validating (no certificate downloads, no revocation checks): a
/// bridge must not dial addresses its policy did not judge.
/// </summary>
internal sealed class TlsTrust
{
    private readonly X509Certificate2Collection _extraRoots = [];

    public TlsTrust(IEnumerable<string> trustedCertificateFiles)
    {
        foreach (var file in trustedCertificateFiles) _extraRoots.ImportFromPemFile(file);
    }

    /// <summary>Why a trusted-certificates file cannot be used, or null.</summary>
    public static string? LoadProblem(string file)
    {
        if (!File.Exists(file)) return $"'{file}' does not exist";
        try
        {
            var certificates = new X509Certificate2Collection();
            certificates.ImportFromPemFile(file);
            return certificates.Count == 0 ? $"'{file}' holds no PEM certificate" : null;
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
        {
            return $"'{file}' cannot be read as PEM certificates ({e.Message})";
        }
    }

    /// <summary>A pin as configured (optionally <c>sha256/</c>-prefixed) in the form compared: plain base64.</summary>
    public static string NormalizePin(string pin) => pin.StartsWith("sha256/", StringComparison.OrdinalIgnoreCase) ? pin[7..] : pin;

    public static bool IsPin(string pin)
    {
        Span<byte> hash = stackalloc byte[32];
        return Convert.TryFromBase64String(NormalizePin(pin), hash, out var written) && written == 32;
    }

    /// <summary>
    /// Runs the client handshake on <paramref name="inner"/> for <paramref name="serverName"/>. Returns
    /// the TLS stream, or throws <see cref="TlsRefusedException"/> with words for the client.
    /// </summary>
    public async Task<SslStream> HandshakeAsync(Stream inner, string serverName, IReadOnlyCollection<string> pins, CancellationToken cancel)
    {
        string? refusal = null;
        var tls = new SslStream(inner, leaveInnerStreamOpen: false);
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = serverName,
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            CertificateChainPolicy = new X509ChainPolicy
            {
                DisableCertificateDownloads = true,
                RevocationMode = X509RevocationMode.NoCheck,
            },
            RemoteCertificateValidationCallback = (_, certificate, chain, errors) =>
            {
                refusal = Judge(serverName, certificate as X509Certificate2 ?? (certificate is null ? null : new X509Certificate2(certificate)), chain, errors, pins);
                return refusal is null;
            },
        };
        try
        {
            await tls.AuthenticateAsClientAsync(options, cancel);
            return tls;
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
            await tls.DisposeAsync();
            throw new TlsRefusedException(refusal ?? $"handshake failed: {Words(e)}");
        }
        catch
        {
            await tls.DisposeAsync();
            throw;
        }
    }

    /// <summary>Why the certificate is refused, in words, or null when it is accepted.</summary>
    private string? Judge(string serverName, X509Certificate2? certificate, X509Chain? chain, SslPolicyErrors errors, IReadOnlyCollection<string> pins)
    {
        if (certificate is null || errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable))
            return $"the server sent no certificate for {serverName}";
        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch))
            return $"certificate name does not match {serverName}";
        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateChainErrors))
        {
            // The system's roots did not do: the operator's extra CAs may (the chain is built again against them).
            using var custom = new X509Chain();
            custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            custom.ChainPolicy.CustomTrustStore.AddRange(_extraRoots);
            custom.ChainPolicy.DisableCertificateDownloads = true;
            custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            if (chain is not null)
                foreach (var element in chain.ChainElements)
                    if (!element.Certificate.Equals(certificate)) custom.ChainPolicy.ExtraStore.Add(element.Certificate);
            if (_extraRoots.Count == 0 || !custom.Build(certificate))
            {
                var statuses = (_extraRoots.Count == 0 ? chain?.ChainStatus : custom.ChainStatus) ?? [];
                return statuses.Any(s => s.Status is X509ChainStatusFlags.NotTimeValid or X509ChainStatusFlags.NotTimeNested)
                    ? $"certificate expired or not yet valid for {serverName}"
                    : $"certificate not trusted for {serverName}";
            }
        }
        if (pins.Count > 0)
        {
            var whole = Convert.ToBase64String(SHA256.HashData(certificate.RawData));
            var key = Convert.ToBase64String(SHA256.HashData(certificate.PublicKey.ExportSubjectPublicKeyInfo()));
            if (!pins.Contains(whole) && !pins.Contains(key))
                return $"certificate does not match the pinned keys for {serverName}";
        }
        return null;
    }

    /// <summary>The innermost message: the words of what went wrong, never a stack trace.</summary>
    private static string Words(Exception e)
    {
        while (e.InnerException is not null) e = e.InnerException;
        return e.Message.TrimEnd('.');
    }
}

/// <summary>A TLS handshake the destination failed; the message is for the client (code 8).</summary>
internal sealed class TlsRefusedException(string reason) : Exception(reason);
