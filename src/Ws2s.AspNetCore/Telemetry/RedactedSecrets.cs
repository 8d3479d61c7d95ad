using System.Collections;

namespace Ws2s.AspNetCore.Telemetry;

/// <summary>The configured secrets every log line is cleaned of; replaced as a whole when the configuration is reloaded.</summary>
internal sealed class RedactedSecrets(IEnumerable<string> secrets) : IReadOnlyCollection<string>
{
    private volatile string[] _secrets = [.. secrets];

    public void Replace(IEnumerable<string> secrets) => _secrets = [.. secrets];

    public int Count => _secrets.Length;

    public IEnumerator<string> GetEnumerator() => ((IEnumerable<string>)_secrets).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
