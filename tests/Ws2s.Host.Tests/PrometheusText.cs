using System.Text.RegularExpressions;

namespace Ws2s.Host.Tests;

/// <summary>
/// Reads a series from /metrics text. In-process hosts share the process's OpenTelemetry listeners (they subscribe to the
/// meter by its name), so a test whose host runs beside others may see their counts added: such tests assert a floor.
/// </summary>
public static class PrometheusText
{
    /// <summary>The value of <paramref name="name"/> with the label <paramref name="label"/>=<paramref name="value"/>, or 0.</summary>
    public static long Read(string metrics, string name, string label, string value)
    {
        var match = Regex.Match(metrics, $@"(?m)^{Regex.Escape(name)}\{{[^}}]*{Regex.Escape(label)}=""{Regex.Escape(value)}""[^}}]*\}} (\d+)");
        return match.Success ? long.Parse(match.Groups[1].Value) : 0;
    }
}
