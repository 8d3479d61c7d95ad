using System.Globalization;

namespace Ws2s.Host.Configuration;

/// <summary>
/// Where the background server (<c>ws2sd start</c>) writes the outcome of each reload, beside its pid file, so
/// that <c>ws2sd reload</c> can wait for it and say whether the new configuration took. The file is replaced by
/// rename (never written through a link) and read without following links; it holds no secrets, only the words
/// of the outcome. Its lines: a number that changes with every reload, why it ran, <c>taken</c> or
/// <c>refused</c>, and the words.
/// </summary>
internal sealed class ReloadReport(string path)
{
    private long _count;

    /// <summary>One reload's outcome as written.</summary>
    public sealed record Outcome(string Stamp, string Why, bool Taken, string Words);

    public void Write(string why, bool taken, string words)
    {
        var stamp = $"{Environment.ProcessId}.{Interlocked.Increment(ref _count).ToString(CultureInfo.InvariantCulture)}";
        NoFollow.ReplaceLines(path, [stamp, why, taken ? "taken" : "refused", words.ReplaceLineEndings(" ")]);
    }

    /// <summary>The last outcome written to <paramref name="file"/>, or null when there is none yet.</summary>
    public static Outcome? Read(string file) =>
        NoFollow.ReadAllLines(file) is [var stamp, var why, var verdict, var words, ..] ? new(stamp, why, verdict == "taken", words) : null;
}
