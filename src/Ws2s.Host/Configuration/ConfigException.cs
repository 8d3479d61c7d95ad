namespace Ws2s.Host.Configuration;

/// <summary>The configuration cannot be used; each problem says which key or file to fix, where it was set, and what to do.</summary>
public sealed class ConfigException(IReadOnlyList<string> problems) : Exception(string.Join("; ", problems))
{
    public ConfigException(string problem) : this([problem])
    {
    }

    public IReadOnlyList<string> Problems { get; } = problems;
}
