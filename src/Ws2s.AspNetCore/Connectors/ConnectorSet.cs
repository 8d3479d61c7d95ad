namespace Ws2s.AspNetCore.Connectors;

/// <summary>
/// The ways this server reaches peers: the registered connectors by scheme (a later registration for a
/// scheme replaces an earlier one, so an application can swap ws2s's own), and the TLS step over any of them.
/// </summary>
internal sealed class ConnectorSet(IEnumerable<IConnector> connectors, Func<TlsTrust> trust)
{
    /// <summary>Connectors whose TLS step always trusts <paramref name="fixedTrust"/>.</summary>
    public ConnectorSet(IEnumerable<IConnector> connectors, TlsTrust fixedTrust)
        : this(connectors, () => fixedTrust)
    {
    }

    private readonly Dictionary<string, IConnector> _byScheme = connectors.GroupBy(c => c.Scheme, StringComparer.Ordinal)
        .ToDictionary(g => g.Key, g => g.Last(), StringComparer.Ordinal);

    public TlsUpgrade Tls { get; } = new(trust);

    /// <summary>The connector for <paramref name="scheme"/>, or null when none is registered.</summary>
    public IConnector? Find(string scheme) => _byScheme.GetValueOrDefault(scheme);
}
