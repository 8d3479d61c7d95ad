using System.Diagnostics;

namespace Ws2s.Host.Tests;

/// <summary>
/// A HOME in a temp folder for the real ws2sd's background commands (start, stop, status, …):
/// its <c>~/.ws2s</c> files, and ws2sd run as a user there runs it. Disposing stops any server it started.
/// </summary>
public sealed class Ws2sdHome : IAsyncDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("ws2s-home-").FullName;

    /// <summary><c>~/.ws2s</c>.</summary>
    public string Dot => System.IO.Path.Combine(Path, ".ws2s");

    public string Config => System.IO.Path.Combine(Dot, "config.json");

    public string Log => System.IO.Path.Combine(Dot, "ws2s.log");

    public string PidFile => System.IO.Path.Combine(Dot, "ws2sd.pid");

    /// <summary>Runs <c>ws2sd ARGS</c> with HOME here to its end: its exit code and what it printed.</summary>
    public Task<(int Exit, string Output)> Ws2sdAsync(params string[] args) => Ws2sdUnderAsync([], args);

    /// <summary>Runs <c>LAUNCHER… ws2sd ARGS</c> (e.g. <c>nohup</c>) with HOME here to its end.</summary>
    public async Task<(int Exit, string Output)> Ws2sdUnderAsync(string[] launcher, params string[] args)
    {
        string[] command = [.. launcher, "dotnet", System.IO.Path.Combine(AppContext.BaseDirectory, "ws2sd.dll"), .. args];
        var run = await Command.RunAsync(command[0], command[1..],
            environment: new Dictionary<string, string?> { ["HOME"] = Path, ["WS2S_CONFIG"] = null });
        return (run.Exit, run.Printed);
    }

    /// <summary>What ws2sd printed, then its log: a failed assertion's message, so a failure on a CI machine says what the server did.</summary>
    public string Explain(string output) =>
        $"{output}\n--- {Log} ---\n{(File.Exists(Log) ? File.ReadAllText(Log) : "(no log)")}";

    /// <summary>
    /// <c>~/.ws2s/config.json</c>'s configuration: listening on 127.0.0.1:<paramref name="port"/>, the destinations
    /// <paramref name="allow"/> allowed, any page, no connect rate limit.
    /// </summary>
    public static TestConfig ConfigFor(int port, params string[] allow) => TestConfig.Loopback
        .Serving(s => s.Listen.Port = port)
        .With(o =>
        {
            o.Origins = ["*"];
            o.Destinations.Allow = [.. allow];
            o.Limits.MaxConnectsPerSecond = 0;
        });

    /// <summary>Writes <c>~/.ws2s/config.json</c> (<see cref="ConfigFor"/>, or the text given, for a test of a bad file).</summary>
    public async Task WriteConfigAsync(string text)
    {
        Directory.CreateDirectory(Dot);
        await File.WriteAllTextAsync(Config, text);
    }

    /// <summary>Writes <c>~/.ws2s/config.json</c>: listening on 127.0.0.1:<paramref name="port"/>, the destinations allowed.</summary>
    public Task WriteConfigAsync(int port, params string[] allow) => WriteConfigAsync(ConfigFor(port, allow));

    /// <summary>Waits (with a deadline) for the log to have a line containing <paramref name="text"/>, after <paramref name="skip"/> lines.</summary>
    public async Task<int> WaitForLogAsync(string text, int skip = 0)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < WsClient.Patience)
        {
            var lines = File.Exists(Log) ? File.ReadAllLines(Log) : [];
            for (var i = skip; i < lines.Length; i++)
                if (lines[i].Contains(text, StringComparison.Ordinal)) return i + 1;
            await Task.Delay(100); // polling a file another process writes
        }
        throw new TimeoutException($"the log never said '{text}':\n{(File.Exists(Log) ? File.ReadAllText(Log) : "(no log)")}");
    }

    public async ValueTask DisposeAsync()
    {
        await Ws2sdAsync("stop"); // never leave a background server behind
        Directory.Delete(Path, recursive: true);
    }
}
