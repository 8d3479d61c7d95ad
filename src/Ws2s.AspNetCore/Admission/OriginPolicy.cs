namespace Ws2s.AspNetCore.Admission;

/// <summary>
/// Which page origins may open a session: exact scheme, host and port (a port of <c>*</c> matches any),
/// no suffix matching, so <c>https://app.example.com</c> never admits <c>https://evil-app.example.com</c>.
/// </summary>
internal sealed class OriginPolicy
{
    private readonly List<(string Scheme, string Host, int? Port)> _allowed = [];

    /// <summary>None configured: the defaults (local pages, and this server's own pages, known once it listens).</summary>
    private readonly bool _defaults;

    public OriginPolicy(IReadOnlyCollection<string> patterns)
    {
        AllowsAny = patterns.Contains("*");
        _defaults = patterns.Count == 0;
        IEnumerable<string> effective = _defaults ? LocalPatterns() : patterns;
        foreach (var pattern in effective.Where(p => p != "*")) _allowed.Add(Parse(pattern)!.Value);
    }

    /// <summary><c>origins</c> contains <c>*</c>: any origin, and requests with none.</summary>
    public bool AllowsAny { get; }

    /// <summary>
    /// Whether a page of <paramref name="origin"/> may open a session. <paramref name="serverUrls"/>: the URLs this
    /// server is bound to; with no origins configured, a page served from one of its own specific addresses is
    /// admitted too (not from 0.0.0.0 or ::, which name no page's origin).
    /// </summary>
    public bool Allows(string origin, Func<IEnumerable<string>> serverUrls)
    {
        if (AllowsAny) return true;
        if (Parse(origin) is not { Port: not null } o) return false;
        if (_allowed.Exists(a => a.Scheme == o.Scheme && a.Host == o.Host && (a.Port is null || a.Port == o.Port))) return true;
        return _defaults && serverUrls().Any(url => Own(url) is { } own && own.Host == o.Host && own.Port == o.Port);
    }

    /// <summary>A bound URL's specific host and port (<c>http://192.0.2.7:3613</c>), either scheme, or null for a wildcard address.</summary>
    private static (string Host, int Port)? Own(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || !System.Net.IPAddress.TryParse(uri.Host.Trim('[', ']'), out var address)) return null;
        if (address.Equals(System.Net.IPAddress.Any) || address.Equals(System.Net.IPAddress.IPv6Any)) return null;
        return (uri.Host.ToLowerInvariant(), uri.Port);
    }

    /// <summary>What is wrong with a configured pattern, or null.</summary>
    public static string? Problem(string pattern) =>
        pattern == "*" || Parse(pattern) is not null ? null
        : $"'{pattern}' is not an origin such as https://app.example.com, http://localhost:* or *";

    /// <summary>Scheme, lower-case host and port (null for <c>:*</c>); null when it is not an origin.</summary>
    private static (string Scheme, string Host, int? Port)? Parse(string text)
    {
        var anyPort = text.EndsWith(":*", StringComparison.Ordinal);
        var withoutWildcard = anyPort ? text[..^2] : text;
        if (!Uri.TryCreate(withoutWildcard, UriKind.Absolute, out var uri)) return null;
        if (uri.Scheme is not ("http" or "https") || uri.AbsolutePath != "/" || uri.Query != "" || uri.UserInfo != "") return null;
        return (uri.Scheme, uri.Host.ToLowerInvariant(), anyPort ? null : uri.Port);
    }

    /// <summary>Local pages: http(s) on localhost, 127.0.0.1 and [::1], any port.</summary>
    private static IEnumerable<string> LocalPatterns()
    {
        foreach (var scheme in new[] { "http", "https" })
            foreach (var host in new[] { "localhost", "127.0.0.1", "[::1]" })
                yield return $"{scheme}://{host}:*";
    }
}
