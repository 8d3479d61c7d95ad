using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Websockify;

/// <summary>
/// Where <c>/websockify?token=NAME</c> relays: <c>rawTargets</c> from the config, and a token file in
/// websockify's format (<c>NAME: HOST:PORT</c> per line, <c>#</c> comments), re-read when it changes.
/// </summary>
public sealed class RawTargets(IReadOnlyDictionary<string, string> configured, string? tokenFile)
{
    private readonly Lock _gate = new();
    private DateTime _fileStamp = DateTime.MinValue;
    private Dictionary<string, Target> _fromFile = [];
    private volatile IReadOnlyDictionary<string, string> _configured = configured;
    private volatile string? _tokenFile = tokenFile;

    /// <summary>The targets of a reloaded configuration.</summary>
    public void Update(IReadOnlyDictionary<string, string> configured, string? tokenFile)
    {
        lock (_gate)
        {
            _configured = configured;
            _tokenFile = tokenFile;
            _fileStamp = DateTime.MinValue;
        }
    }

    public readonly record struct Target(Protocol.Host Host, Port Port);

    /// <summary>Parses <c>HOST:PORT</c> (<c>[v6]:PORT</c> for IPv6; the host as <see cref="HostName"/> checks it); null if malformed.</summary>
    public static Target? Parse(string text)
    {
        var colon = text.LastIndexOf(':');
        if (colon <= 0) return null;
        return long.TryParse(text[(colon + 1)..].Trim(), out var number) ? Of(text[..colon].Trim(), number) : null;
    }

    /// <summary>A target from a host (checked as <see cref="HostName"/> checks it) and a port; null if either is not valid.</summary>
    public static Target? Of(string host, long port)
    {
        if (HostName.parse(host) is not { IsOk: true } parsed) return null;
        var checkedPort = Port.TryCreate(port);
        return checkedPort.IsSome ? new Target(parsed.ResultValue, checkedPort.Value) : null;
    }

    public Target? Find(string name)
    {
        if (_configured.TryGetValue(name, out var text)) return Parse(text);
        if (_tokenFile is not { } tokenFile) return null;
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
