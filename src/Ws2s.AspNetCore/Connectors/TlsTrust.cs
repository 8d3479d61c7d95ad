using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.FSharp.Collections;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Connectors;

/// <summary>
/// What a TLS connection to a destination trusts: the system's roots plus the operator's extra CAs
/// (<c>tls.trustedCertificates</c>), and a server's certificate as browsers take it: the server name
/// in its subjectAltName (never the subject's CN alone), in its validity period, not a CA, and for
/// server authentication when it names its usages. There is no way to turn validation off. Nothing is
/// fetched from the network while validating (no certificate downloads, no revocation checks): a
/// bridge must not dial addresses its policy did not judge. Pins are policy: the handshake reports
/// what the certificate presents (<see cref="PeerCertificate"/>) and the core judges them.
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

    private const string ServerAuth = "1.3.6.1.5.5.7.3.1";

    /// <summary>
    /// Runs the client handshake on <paramref name="inner"/> for <paramref name="serverName"/>. Returns
    /// the TLS stream and what its certificate presents, or throws <see cref="TlsRefusedException"/> with
    /// words for the client.
    /// </summary>
    public async Task<(SslStream Tls, PeerCertificate Certificate)> HandshakeAsync(Stream inner, string serverName, CancellationToken cancel)
    {
        string? refusal = null;
        PeerCertificate? presented = null;
        var tls = new SslStream(inner, leaveInnerStreamOpen: false);
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = serverName,
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            // A TLS 1.2 peer may ask to renegotiate inside any read: a handshake (key exchange, certificate checks) on the
            // session's thread, as often as the peer likes. Refused: the connection ends (code 5) instead.
            AllowRenegotiation = false,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            CertificateChainPolicy = new X509ChainPolicy
            {
                DisableCertificateDownloads = true,
                RevocationMode = X509RevocationMode.NoCheck,
            },
            RemoteCertificateValidationCallback = (_, certificate, chain, errors) =>
            {
                var leaf = certificate as X509Certificate2 ?? (certificate is null ? null : new X509Certificate2(certificate));
                refusal = Judge(serverName, leaf, chain, errors);
                if (refusal is null) presented = Presented(leaf!);
                return refusal is null;
            },
        };
        try
        {
            await tls.AuthenticateAsClientAsync(options, cancel);
            // The callback judged the certificate; should a platform skip it for a resumed session, the
            // certificate is the one judged when the session began.
            presented ??= tls.RemoteCertificate is { } remote
                ? Presented(remote as X509Certificate2 ?? new X509Certificate2(remote))
                : throw new TlsRefusedException($"the server sent no certificate for {serverName}");
            return (tls, presented);
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
    private string? Judge(string serverName, X509Certificate2? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (certificate is null || errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable))
            return $"the server sent no certificate for {serverName}";
        // The name must be in the subjectAltName: the platform's check may still take the subject's CN.
        if (SubjectAltNames(certificate) is null)
            return $"certificate for {serverName} has no subjectAltName (a name only in the subject's CN is not accepted)";
        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch)
            || !certificate.MatchesHostname(serverName, allowWildcards: true, allowCommonName: false))
            return $"certificate name does not match {serverName}";
        // A server's certificate, whichever roots it chains to: not a CA's, and for server authentication
        // when it names its usages (no EKU extension: any usage).
        if (certificate.Extensions.OfType<X509BasicConstraintsExtension>().Any(b => b.CertificateAuthority))
            return $"certificate for {serverName} is a CA certificate, not a server's";
        if (certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().FirstOrDefault() is { } usages
            && !usages.EnhancedKeyUsages.Cast<Oid>().Any(o => o.Value == ServerAuth))
            return $"certificate for {serverName} is not for server authentication (its extended key usage lacks serverAuth)";
        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateChainErrors))
        {
            // The system's roots did not do: the operator's extra CAs may (the chain is built again against them).
            using var custom = new X509Chain();
            custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            custom.ChainPolicy.CustomTrustStore.AddRange(_extraRoots);
            custom.ChainPolicy.DisableCertificateDownloads = true;
            custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            custom.ChainPolicy.ApplicationPolicy.Add(new Oid(ServerAuth));
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
        return null;
    }

    /// <summary>The certificate's subjectAltName extension, or null when it has none.</summary>
    private static X509SubjectAlternativeNameExtension? SubjectAltNames(X509Certificate2 certificate) =>
        certificate.Extensions.FirstOrDefault(e => e.Oid?.Value == "2.5.29.17") is { } extension
            ? extension as X509SubjectAlternativeNameExtension ?? new X509SubjectAlternativeNameExtension(extension.RawData, extension.Critical)
            : null;

    /// <summary>What an accepted certificate presents, for the core's pin check: its subjectAltName entries and its two SHA-256s.</summary>
    private static PeerCertificate Presented(X509Certificate2 certificate)
    {
        var names = SubjectAltNames(certificate) is { } san
            ? san.EnumerateDnsNames().Concat(san.EnumerateIPAddresses().Select(a => a.ToString())).ToList()
            : [];
        var whole = Convert.ToBase64String(SHA256.HashData(certificate.RawData));
        var key = Convert.ToBase64String(SHA256.HashData(certificate.PublicKey.ExportSubjectPublicKeyInfo()));
        return new PeerCertificate(ListModule.OfSeq(names), ListModule.OfSeq([whole, key]));
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
