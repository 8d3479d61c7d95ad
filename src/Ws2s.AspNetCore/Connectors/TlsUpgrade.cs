using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Connectors;

/// <summary>
/// The TLS step, over any connector's peer: a plain peer stream in, a secured one out with what its
/// certificate presents (the core judges the pins). Refusals throw <see cref="TlsRefusedException"/> in words.
/// </summary>
internal sealed class TlsUpgrade(TlsTrust trust)
{
    /// <summary>What handshakes trust (replaced whole when the configuration is reloaded).</summary>
    public TlsTrust Trust { get; set; } = trust;

    public async Task<(PeerStream Secured, PeerCertificate Certificate)> SecureAsync(PeerStream plain, string serverName, CancellationToken cancel)
    {
        var (tls, certificate) = await Trust.HandshakeAsync(plain.Stream, serverName, cancel);
        return (plain.Secured(tls), certificate);
    }
}
