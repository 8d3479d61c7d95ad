using System.Net;

namespace Ws2s.AspNetCore.Admission;

/// <summary>
/// A client's address in the one form every key uses (quotas, rate limits, logs, trusted proxies): an
/// IPv4 client that reached a dual-stack listener (<c>::ffff:127.0.0.5</c>) is the IPv4 client it is
/// (<c>127.0.0.5</c>), so it cannot count as two clients by reaching two listeners.
/// </summary>
internal static class ClientAddress
{
    /// <summary>The address in its one form (IPv4-mapped IPv6 as IPv4); <see cref="IPAddress.None"/> for none.</summary>
    public static IPAddress Normal(IPAddress? address) =>
        address is null ? IPAddress.None : address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    /// <summary>The endpoint with its address in the one form.</summary>
    public static IPEndPoint Normal(IPEndPoint endpoint) =>
        endpoint.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(endpoint.Address.MapToIPv4(), endpoint.Port) : endpoint;

    /// <summary>The request's client (after PROXY protocol and trusted X-Forwarded-For), in the one form.</summary>
    public static IPAddress Of(HttpContext context) => Normal(context.Connection.RemoteIpAddress);
}
