using System.Net;

namespace Ws2s.AspNetCore.Admission;

/// <summary>
/// The host names this server answers to, against DNS rebinding: a page on a name its attacker controls,
/// re-pointed at this machine, is same-origin with ws2s and could read its answers, but its requests
/// carry that name in <c>Host</c>. Answered: any IP literal (a page at an address is not a rebinding page),
/// <c>localhost</c> and <c>*.localhost</c>, and the names in <c>allowedHosts</c>
/// (exact, or <c>*.example.com</c> for the names under it; <c>*</c> for any). Names are compared in
/// lower case without a trailing dot or port.
/// </summary>
internal sealed class AllowedHosts
{
    private readonly HashSet<string> _exact = new(StringComparer.Ordinal) { "localhost" };
    private readonly List<string> _suffixes = [".localhost"];
    private readonly bool _any;

    public AllowedHosts(IEnumerable<string> configured)
    {
        foreach (var entry in configured)
        {
            if (entry == "*") _any = true;
            else if (entry.StartsWith("*.", StringComparison.Ordinal) && Name(entry[2..]) is { } parent) _suffixes.Add("." + parent);
            else if (Name(entry) is { } name) _exact.Add(name);
        }
    }

    /// <summary>What is wrong with a configured entry, or null.</summary>
    public static string? Problem(string entry) =>
        entry == "*" || Name(entry.StartsWith("*.", StringComparison.Ordinal) ? entry[2..] : entry) is not null ? null
        : $"'{entry}' is not a host name such as ws2s.example.com, *.example.com or *";

    /// <summary>Whether a request with this <c>Host</c> header is answered (no header: nothing to rebind, answered).</summary>
    public bool Allows(HostString host)
    {
        if (_any || !host.HasValue) return true;
        var text = host.Host;
        if (IPAddress.TryParse(text.Trim('[', ']'), out _)) return true;
        if (Name(text) is not { } name) return false;
        return _exact.Contains(name) || _suffixes.Exists(s => name.EndsWith(s, StringComparison.Ordinal));
    }

    /// <summary>The refusal's words (the name is the client's own, shown escaped).</summary>
    public static string Refusal(HostString host) =>
        $"this server does not answer to the host name '{Uri.EscapeDataString(host.Host)}' (DNS rebinding protection); "
        + "if it is this server's name, add it to 'allowedHosts' in the ws2s config";

    /// <summary>A host name in its compared form (lower case, no trailing dot), or null when it is not one.</summary>
    private static string? Name(string text)
    {
        var name = text.TrimEnd('.');
        try
        {
            name = new System.Globalization.IdnMapping().GetAscii(name).ToLowerInvariant(); // browsers send the xn-- form
        }
        catch (ArgumentException)
        {
            return null;
        }
        return name.Length is > 0 and <= 253 && Uri.CheckHostName(name) == UriHostNameType.Dns ? name : null;
    }
}
