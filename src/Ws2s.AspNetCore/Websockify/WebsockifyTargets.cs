using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Websockify;

/// <summary>
/// Where <c>/websockify?token=NAME</c> relays: <c>rawTargets</c> from the config, and a token file in
/// websockify's format (<c>NAME: HOST:PORT</c> or <c>NAME: unix_socket:/path</c> per line, <c>#</c> comments),
/// re-read when it changes. Every target is judged by the destination policy like any connect. One configuration's
/// (a reload makes a new one, part of its <see cref="Configuration.Ws2sSnapshot"/>).
/// </summary>
internal sealed class WebsockifyTargets(IReadOnlyDictionary<string, string> configured, string? tokenFile)
{
    private readonly Lock _gate = new();
    private DateTime _fileStamp = DateTime.MinValue;
    private Dictionary<string, Target> _fromFile = [];

    /// <summary>Where a websockify session relays: host:port over TCP, a Unix socket, or a named peer.</summary>
    public readonly record struct Target(Destination Destination);

    /// <summary>
    /// Parses <c>HOST:PORT</c> (<c>[v6]:PORT</c> for IPv6; the host as <see cref="HostName"/> checks it),
    /// <c>unix:/path</c> (websockify's <c>--unix-target</c>; its token files' <c>unix_socket:/path</c> too) or
    /// <c>scheme:name</c>; null if malformed.
    /// </summary>
    public static Target? Parse(string text)
    {
        text = text.Trim();
        if (text.StartsWith("unix_socket:", StringComparison.Ordinal)) text = "unix:" + text["unix_socket:".Length..];
        if (Destinations.tryParse(text)?.Value is { } listed) return listed.IsOk ? new Target(listed.ResultValue) : null;
        var colon = text.LastIndexOf(':');
        if (colon <= 0) return null;
        return long.TryParse(text[(colon + 1)..].Trim(), out var number) ? Of(text[..colon].Trim(), number) : null;
    }

    /// <summary>A target from a host (checked as <see cref="HostName"/> checks it) and a port; null if either is not valid.</summary>
    public static Target? Of(string host, long port)
    {
        if (HostNameModule.parse(host) is not { IsOk: true } parsed) return null;
        var checkedPort = Port.TryCreate(port);
        return checkedPort.IsSome ? new Target(Destination.NewTcpPeer(parsed.ResultValue, checkedPort.Value)) : null;
    }

    public Target? Find(string name)
    {
        if (configured.TryGetValue(name, out var text)) return Parse(text);
        if (tokenFile is null) return null;
        lock (_gate)
        {
            ReloadIfChanged(tokenFile);
            return _fromFile.TryGetValue(name, out var t) ? t : null;
        }
    }

    private void ReloadIfChanged(string path)
    {
        var stamp = File.Exists(path) ? File.GetLastWriteTimeUtc(path) : DateTime.MinValue;
        if (stamp == _fileStamp) return;
        var targets = new Dictionary<string, Target>();
        if (stamp != DateTime.MinValue)
        {
            foreach (var raw in File.ReadAllLines(path))
            {
                var line = raw.Split('#')[0].Trim();
                var colon = line.IndexOf(':');
                if (colon <= 0) continue;
                if (Parse(line[(colon + 1)..]) is { } target) targets[line[..colon].Trim()] = target;
            }
        }
        _fromFile = targets;
        _fileStamp = stamp;
    }
}
