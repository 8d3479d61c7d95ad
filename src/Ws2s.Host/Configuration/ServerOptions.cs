using System.Net;

namespace Ws2s.Host.Configuration;

/// <summary>
/// ws2sd's own part of the configuration file: where it listens (<c>listen</c>, <c>endpoints</c>, <c>management</c>)
/// and how long it gives its sessions when it stops. The rest of the file is the library's
/// (<see cref="Ws2s.AspNetCore.Configuration.Ws2sOptions"/>). Read at start: a change needs a restart.
/// </summary>
public sealed class ServerOptions
{
    public HostAndPort Listen { get; set; } = new();

    /// <summary>More endpoints beside <see cref="Listen"/>, each optionally with TLS (wss://).</summary>
    public List<EndpointOptions> Endpoints { get; set; } = [];

    /// <summary>When set, /metrics, /healthz and /readyz are served only on this endpoint.</summary>
    public HostAndPort? Management { get; set; }

    /// <summary>Seconds a stopping server gives its sessions to close before it cuts them off.</summary>
    public int ShutdownTimeoutSeconds { get; set; } = 10;

    public sealed class HostAndPort
    {
        public string Host { get; set; } = "127.0.0.1";
        public int Port { get; set; } = 3613;

        public IPAddress? Address() => ParseHost(Host);
    }

    public sealed class EndpointOptions
    {
        public string Host { get; set; } = "127.0.0.1";
        public int Port { get; set; }

        /// <summary>PEM certificate (chain) file; with <see cref="Key"/>, the endpoint speaks TLS.</summary>
        public string? Certificate { get; set; }

        /// <summary>PEM private key file for <see cref="Certificate"/>.</summary>
        public string? Key { get; set; }

        /// <summary>A PKCS#12 (.pfx) file instead of PEM files.</summary>
        public string? Pfx { get; set; }

        public string? PfxPassword { get; set; }

        public bool UsesTls => Certificate is not null || Pfx is not null;

        public IPAddress? Address() => ParseHost(Host);
    }

    /// <summary>The numbers each numeric key accepts (for the key check's words, and <see cref="Problems"/>).</summary>
    public static readonly IReadOnlyDictionary<string, (long Low, long High)> Ranges =
        new Dictionary<string, (long, long)>(StringComparer.OrdinalIgnoreCase) { ["shutdownTimeoutSeconds"] = (0, 3600) };

    /// <summary>Every problem with these options, each naming the key to fix.</summary>
    public IEnumerable<string> Problems()
    {
        if (Listen.Address() is null)
            yield return $"listen.host '{Listen.Host}' is not an IP address or 'localhost'";
        if (Listen.Port is < 0 or > 65535)
            yield return $"listen.port {Listen.Port} is not a port number (0-65535, 0 picks a free port)";
        for (var i = 0; i < Endpoints.Count; i++)
        {
            var e = Endpoints[i];
            if (e.Address() is null) yield return $"endpoints[{i}].host '{e.Host}' is not an IP address or 'localhost'";
            if (e.Port is < 0 or > 65535) yield return $"endpoints[{i}].port {e.Port} is not a port number";
            if (e.Certificate is not null && e.Key is null) yield return $"endpoints[{i}]: certificate needs key (a PEM private key file)";
            foreach (var file in new[] { e.Certificate, e.Key, e.Pfx })
                if (file is not null && !File.Exists(file)) yield return $"endpoints[{i}]: '{file}' does not exist";
        }
        if (Management is not null && Management.Address() is null)
            yield return $"management.host '{Management.Host}' is not an IP address or 'localhost'";
        var (low, high) = Ranges["shutdownTimeoutSeconds"];
        if (ShutdownTimeoutSeconds < low || ShutdownTimeoutSeconds > high)
            yield return $"shutdownTimeoutSeconds {ShutdownTimeoutSeconds} must be between {low} and {high}";
    }

    /// <summary>Keys that differ from <paramref name="next"/>: all of them take effect only after a restart.</summary>
    public IEnumerable<string> Changed(ServerOptions next)
    {
        static bool Same(object? a, object? b) => System.Text.Json.JsonSerializer.Serialize(a) == System.Text.Json.JsonSerializer.Serialize(b);
        if (!Same(Listen, next.Listen)) yield return "listen";
        if (!Same(Endpoints, next.Endpoints)) yield return "endpoints";
        if (!Same(Management, next.Management)) yield return "management";
        if (ShutdownTimeoutSeconds != next.ShutdownTimeoutSeconds) yield return "shutdownTimeoutSeconds";
    }

    private static IPAddress? ParseHost(string host) =>
        host.Equals("localhost", StringComparison.OrdinalIgnoreCase) ? IPAddress.Loopback
        : IPAddress.TryParse(host, out var address) ? address
        : null;
}
