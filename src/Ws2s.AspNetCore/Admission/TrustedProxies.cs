using System.Net;

namespace Ws2s.AspNetCore.Admission;

/// <summary>
/// The load balancers and reverse proxies (<c>trustedProxies</c>: addresses or CIDR networks) whose
/// word on the client's address ws2s takes: a PROXY protocol header, or <c>X-Forwarded-For</c>.
/// Anyone else's headers are ignored, so a client cannot pose as another to escape per-client limits.
/// </summary>
internal sealed class TrustedProxies
{
    private readonly IReadOnlyList<IPNetwork> _networks;

    public TrustedProxies(IEnumerable<string> entries) =>
        _networks = entries.Select(e => Parse(e) ?? throw new ArgumentException($"'{e}' is not an address or network", nameof(entries))).ToList();

    public IReadOnlyList<IPNetwork> Networks => _networks;

    public bool Any => _networks.Count > 0;

    public bool Trusts(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        foreach (var network in _networks)
            if (network.Contains(address)) return true;
        return false;
    }

    /// <summary>An address (one host) or a CIDR network; null when it is neither.</summary>
    public static IPNetwork? Parse(string entry) =>
        IPAddress.TryParse(entry, out var address) ? new IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128)
        : IPNetwork.TryParse(entry, out var network) ? network
        : null;
}
