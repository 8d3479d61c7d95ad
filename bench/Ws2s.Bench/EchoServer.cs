using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Ws2s.Bench;

/// <summary>
/// The echo server every workload talks to, directly (the baseline) or through a bridge: plain TCP,
/// or TLS with a self-signed certificate for 127.0.0.1 (its PEM in <see cref="CertificateFile"/>,
/// for the bridge to trust).
/// </summary>
internal sealed class EchoServer : IDisposable
{
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly X509Certificate2? _certificate;

    public EchoServer(bool tls = false)
    {
        if (tls)
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest("CN=ws2s bench echo", key, HashAlgorithmName.SHA256);
            var names = new SubjectAlternativeNameBuilder();
            names.AddIpAddress(IPAddress.Loopback);
            request.CertificateExtensions.Add(names.Build());
            using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
            _certificate = X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pkcs12), null);
            CertificateFile = Path.Combine(Directory.CreateTempSubdirectory("ws2s-bench-tls-").FullName, "echo.pem");
            File.WriteAllText(CertificateFile, _certificate.ExportCertificatePem());
        }
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(4096);
        _ = AcceptAsync();
    }

    public IPEndPoint Endpoint => (IPEndPoint)_listener.LocalEndPoint!;

    /// <summary>The TLS echo server's certificate as PEM (null for plain TCP).</summary>
    public string? CertificateFile { get; }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var socket = await _listener.AcceptAsync();
                socket.NoDelay = true;
                _ = _certificate is null ? EchoAsync(socket) : EchoTlsAsync(socket, _certificate);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
    }

    private static async Task EchoAsync(Socket socket)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            int read;
            while ((read = await socket.ReceiveAsync(buffer)) > 0)
                await socket.SendAsync(buffer.AsMemory(0, read));
        }
        catch (SocketException) { }
        finally { socket.Dispose(); }
    }

    private static async Task EchoTlsAsync(Socket socket, X509Certificate2 certificate)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            await using var tls = new SslStream(new NetworkStream(socket, ownsSocket: true));
            await tls.AuthenticateAsServerAsync(certificate);
            int read;
            while ((read = await tls.ReadAsync(buffer)) > 0)
                await tls.WriteAsync(buffer.AsMemory(0, read));
        }
        catch (Exception e) when (e is IOException or SocketException or System.Security.Authentication.AuthenticationException) { }
    }

    public void Dispose() => _listener.Dispose();
}
