namespace Ws2s.AspNetCore.Admission;

/// <summary>
/// Which page origins may open a session: exact scheme, host and port (a port of <c>*</c> matches any),
/// no suffix matching, so <c>https://app.example.com</c> never admits <c>https://evil-app.example.com</c>.
/// </summary>
public sealed class OriginPolicy
{
    private readonly List<(string Scheme, string Host, int? Port)> _allowed = [];

    public OriginPolicy(IReadOnlyCollection<string> patterns, Configuration.Ws2sOptions.HostAndPort listen)
    {
        AllowsAny = patterns.Contains("*");
        IEnumerable<string> effective = patterns.Count > 0 ? patterns : DefaultPatterns(listen);
        foreach (var pattern in effective.Where(p => p != "*")) _allowed.Add(Parse(pattern)!.Value);
    }

    /// <summary><c>origins</c> contains <c>*</c>: any origin, and requests with none.</summary>
    public bool AllowsAny { get; }

    public bool Allows(string origin)
    {
        if (AllowsAny) return true;
        if (Parse(origin) is not { Port: not null } o) return false;
        return _allowed.Exists(a => a.Scheme == o.Scheme && a.Host == o.Host && (a.Port is null || a.Port == o.Port));
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

    private static IEnumerable<string> DefaultPatterns(Configuration.Ws2sOptions.HostAndPort listen)
    {
        foreach (var scheme in new[] { "http", "https" })
            foreach (var host in new[] { "localhost", "127.0.0.1", "[::1]" })
                yield return $"{scheme}://{host}:*";
        // The server's own origin, for pages it serves on a specific address.
        if (System.Net.IPAddress.TryParse(listen.Host, out var address) && !address.Equals(System.Net.IPAddress.Any) && !address.Equals(System.Net.IPAddress.IPv6Any))
        {
            var host = address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();
            yield return $"http://{host}:{listen.Port}";
            yield return $"https://{host}:{listen.Port}";
        }
    }
}
