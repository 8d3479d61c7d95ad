using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Ws2s.AspNetCore;

/// <summary>
/// ws2s's admission in Kestrel's accept path, for any listener of an app that called <c>AddWs2s</c>: the connection
/// gate, and the PROXY protocol. ws2sd's listeners use these very extensions. Order them as the bytes come: the
/// gate, then the PROXY header, then TLS:
/// <code>kestrel.Listen(IPAddress.Loopback, 8080, listen => listen.UseWs2sGate().UseWs2sProxyProtocol().UseHttps(…));</code>
/// </summary>
public static class Ws2sListenOptionsExtensions
{
    /// <summary>
    /// Bounds the connections the app holds on this listener (and every other one that uses the gate) to
    /// <c>limits.maxConnections</c>, decided as each is accepted; closes a connection that sends no complete request
    /// within <c>limits.handshakeTimeoutSeconds</c> of being accepted (TLS handshake included); and when the app is
    /// full, closes the oldest such silent connection to make room, so that a flood of connections that never speak
    /// cannot lock out clients that do. Both limits are read at start.
    /// </summary>
    public static ListenOptions UseWs2sGate(this ListenOptions listen)
    {
        ArgumentNullException.ThrowIfNull(listen);
        var services = listen.ApplicationServices;
        var gate = services.GetService<Admission.ConnectionGate>()
            ?? throw new InvalidOperationException("UseWs2sGate needs ws2s's services: call services.AddWs2s(…) first");
        services.GetRequiredService<Admission.GatedEndpoints>().Add(listen.EndPoint);
        listen.Use(gate.Wrap);
        return listen;
    }

    /// <summary>
    /// Reads the PROXY protocol header (HAProxy's, versions 1 and 2) that a load balancer listed in <c>trustedProxies</c>
    /// sends before the client's bytes: the connection's remote address becomes the client's, for ws2s's per-client
    /// limits, its logs and everything else in the app. The header is optional from a trusted proxy (health checks
    /// come without one) and never read from anyone else: a request that begins with one from an untrusted address is
    /// refused as bad HTTP, so no client can pose as another. Call it before <c>UseHttps</c> (the header precedes TLS).
    /// </summary>
    public static ListenOptions UseWs2sProxyProtocol(this ListenOptions listen)
    {
        ArgumentNullException.ThrowIfNull(listen);
        var proxyProtocol = listen.ApplicationServices.GetService<Admission.ProxyProtocol>()
            ?? throw new InvalidOperationException("UseWs2sProxyProtocol needs ws2s's services: call services.AddWs2s(…) first");
        listen.Use(proxyProtocol.Wrap);
        return listen;
    }
}
