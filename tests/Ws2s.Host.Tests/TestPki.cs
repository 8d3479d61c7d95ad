using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Ws2s.Host.Tests;

/// <summary>A private CA and the certificates the TLS tests present, as objects and PEM files.</summary>
public sealed class TestPki : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("ws2s-tls-").FullName;

    public TestPki()
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=ws2s test CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        Ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-60), DateTimeOffset.UtcNow.AddYears(1));
        Leaf = Issue("redis.test", DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30), out var leafKey);
        Expired = Issue("redis.test", DateTimeOffset.UtcNow.AddDays(-30), DateTimeOffset.UtcNow.AddDays(-1), out _);
        using var selfKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var selfRequest = LeafRequest("redis.test", selfKey);
        SelfSigned = Exportable(selfRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30)));
        CaFile = Write("ca.pem", Ca.ExportCertificatePem());
        LeafFile = Write("leaf.pem", Leaf.ExportCertificatePem());
        LeafKeyFile = Write("leaf.key", leafKey);
    }

    public X509Certificate2 Ca { get; }
    public X509Certificate2 Leaf { get; }
    public X509Certificate2 Expired { get; }
    public X509Certificate2 SelfSigned { get; }
    public string CaFile { get; }
    public string LeafFile { get; }
    public string LeafKeyFile { get; }

    private static CertificateRequest LeafRequest(string name, ECDsa key)
    {
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(name);
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        return request;
    }

    /// <summary>
    /// A leaf from the private CA, valid now, shaped as asked: its subjectAltName entries
    /// (<paramref name="dnsNames"/>, <paramref name="addresses"/>; none: no subjectAltName extension,
    /// the name only in the subject's CN), its extended key usages (null: no EKU extension) and
    /// whether it claims to be a CA (basicConstraints CA:TRUE).
    /// </summary>
    public X509Certificate2 IssueLeaf(string commonName, string[] dnsNames, IPAddress[] addresses, string[]? usages, bool ca = false)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={commonName}", key, HashAlgorithmName.SHA256);
        if (dnsNames.Length + addresses.Length > 0)
        {
            var names = new SubjectAlternativeNameBuilder();
            foreach (var name in dnsNames) names.AddDnsName(name);
            foreach (var address in addresses) names.AddIpAddress(address);
            request.CertificateExtensions.Add(names.Build());
        }
        if (usages is not null)
        {
            var oids = new OidCollection();
            foreach (var usage in usages) oids.Add(new Oid(usage));
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(oids, false));
        }
        if (ca) request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var issued = request.Create(Ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30), RandomNumberGenerator.GetBytes(8));
        return Exportable(issued.CopyWithPrivateKey(key));
    }

    public const string ServerAuth = "1.3.6.1.5.5.7.3.1";
    public const string ClientAuth = "1.3.6.1.5.5.7.3.2";

    private X509Certificate2 Issue(string name, DateTimeOffset from, DateTimeOffset until, out string keyPem)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var serial = RandomNumberGenerator.GetBytes(8);
        using var issued = LeafRequest(name, key).Create(Ca, from, until, serial);
        keyPem = key.ExportPkcs8PrivateKeyPem();
        return Exportable(issued.CopyWithPrivateKey(key));
    }

    /// <summary>A certificate with its key, usable by SslStream as a server on Linux (through PKCS#12).</summary>
    private static X509Certificate2 Exportable(X509Certificate2 certificate) =>
        X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null);

    private string Write(string name, string pem)
    {
        var path = Path.Combine(_directory, name);
        File.WriteAllText(path, pem);
        return path;
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}

