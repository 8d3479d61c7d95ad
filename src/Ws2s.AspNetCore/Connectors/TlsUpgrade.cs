using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Connectors;

/// <summary>
/// The TLS step, over any connector's peer: a plain peer stream in, a secured one out with what its
/// certificate presents (the core judges the pins). Refusals throw <see cref="TlsRefusedException"/> in words.
/// </summary>
internal sealed class TlsUpgrade(Func<TlsTrust> trust)
{
    /// <summary>Handshakes that always trust <paramref name="fixedTrust"/>.</summary>
    public TlsUpgrade(TlsTrust fixedTrust)
        : this(() => fixedTrust)
    {
    }

    /// <summary>What handshakes trust: the configuration's in force (a reload replaces it whole).</summary>
    public TlsTrust Trust => trust();

    public async Task<(PeerStream Secured, PeerCertificate Certificate)> SecureAsync(PeerStream plain, string serverName, CancellationToken cancel)
    {
        var (tls, certificate) = await Trust.HandshakeAsync(plain.Stream, serverName, cancel);
        return (plain.Secured(tls), certificate);
    }
}
