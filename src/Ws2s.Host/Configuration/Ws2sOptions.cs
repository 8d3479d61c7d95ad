using System.Net;
using Ws2s.Protocol;

namespace Ws2s.Host.Configuration;

/// <summary>The ws2s configuration file (<c>~/.ws2s/config.json</c>), bound from configuration.</summary>
public sealed class Ws2sOptions
{
    public ListenOptions Listen { get; set; } = new();

    /// <summary>The original's switch: may sessions dial this machine itself (loopback, 0.0.0.0, ::)?</summary>
    public bool AllowConnectToServerLocal { get; set; }

    /// <summary>Resolve plus dial must finish within this many seconds (code 2 otherwise).</summary>
    public int ConnectTimeoutSeconds { get; set; } = 10;

    /// <summary>The largest WebSocket message a client may send; a larger one closes the session with 1009.</summary>
    public int MaxMessageBytes { get; set; } = 1 << 20;

    /// <summary>Requests that may queue behind a pending connect or write before the host stops reading the client.</summary>
    public int MaxPendingRequests { get; set; } = 64;

    public sealed class ListenOptions
    {
        public string Host { get; set; } = "127.0.0.1";
        public int Port { get; set; } = 3613;
    }

    /// <summary>The settings the protocol core runs each session with.</summary>
    public Session.Settings ToSessionSettings() => new(
        new Policy.DestinationPolicy(AllowConnectToServerLocal),
        ConnectTimeoutSeconds,
        MaxPendingRequests);

    /// <summary>Every problem with these options, each naming the key to fix.</summary>
    public IEnumerable<string> Problems()
    {
        if (ListenAddress() is null)
            yield return $"listen.host '{Listen.Host}' is not an IP address or 'localhost'";
        if (Listen.Port is < 0 or > 65535)
            yield return $"listen.port {Listen.Port} is not a port number (0-65535, 0 picks a free port)";
        if (ConnectTimeoutSeconds is < 1 or > 3600)
            yield return $"connectTimeoutSeconds {ConnectTimeoutSeconds} must be between 1 and 3600";
        if (MaxMessageBytes is < 1024 or > 64 << 20)
            yield return $"maxMessageBytes {MaxMessageBytes} must be between 1024 and 67108864";
        if (MaxPendingRequests is < 1 or > 4096)
            yield return $"maxPendingRequests {MaxPendingRequests} must be between 1 and 4096";
    }

    public IPAddress? ListenAddress() =>
        Listen.Host.Equals("localhost", StringComparison.OrdinalIgnoreCase) ? IPAddress.Loopback
        : IPAddress.TryParse(Listen.Host, out var address) ? address
        : null;
}
