
namespace Ws2s.Host.Tests;

/// <summary>
/// ws2sd as its own process, as a user runs it: every line it prints is kept, and the URLs it
/// announces are read from them. Disposing it kills it if it still runs.
/// </summary>
public sealed class ServerProcess : IAsyncDisposable
{
    private readonly WatchedProcess _watched;

    private ServerProcess(WatchedProcess watched) => _watched = watched;

    public System.Diagnostics.Process Process => _watched.Process;

    /// <summary>Everything printed so far, stdout and stderr interleaved as they arrived.</summary>
    public IReadOnlyCollection<string> Output => _watched.Lines;

    /// <param name="home">HOME for the process (where ~/.ws2s/config.json lives).</param>
    /// <param name="configVariable">WS2S_CONFIG, or null to leave it unset.</param>
    /// <param name="launcher">A command that runs ws2sd (e.g. <c>prlimit --nofile=256</c>), or null to run it directly.</param>
    /// <param name="environment">More variables to set.</param>
    public static ServerProcess Start(IEnumerable<string> args, string? home = null, string? configVariable = null, string[]? launcher = null,
        IReadOnlyDictionary<string, string?>? environment = null)
    {
        var variables = new Dictionary<string, string?>(environment ?? new Dictionary<string, string?>()) { ["WS2S_CONFIG"] = configVariable };
        if (home is not null) variables["HOME"] = home;
        return new ServerProcess(WatchedProcess.Start(launcher?[0] ?? "dotnet",
            [.. launcher?.Skip(1).Append("dotnet") ?? [], Path.Combine(AppContext.BaseDirectory, "ws2sd.dll"), .. args], environment: variables));
    }

    /// <summary>The first line that satisfies <paramref name="wanted"/>, waiting for it (fails after <see cref="WsClient.Patience"/> or if the process exits first).</summary>
    public Task<string> WaitForLineAsync(Func<string, bool> wanted) => _watched.WaitForLineAsync(wanted, WsClient.Patience);

    /// <summary>The first ws:// URL the server announces.</summary>
    public async Task<Uri> ListeningUrlAsync() =>
        new(Said(await WaitForLineAsync(l => Said(l).StartsWith("ws2s listening on ", StringComparison.Ordinal)))["ws2s listening on ".Length..].Split(' ')[0]);

    public async Task<Uri> ManagementUrlAsync() =>
        new(Said(await WaitForLineAsync(l => Said(l).StartsWith("ws2s management", StringComparison.Ordinal))).Split(' ').Last());

    /// <summary>What a line says: the line itself, or with JSON logs its <c>Message</c>.</summary>
    public static string Said(string line)
    {
        if (!line.StartsWith('{')) return line;
        try
        {
            return System.Text.Json.Nodes.JsonNode.Parse(line)?["Message"]?.GetValue<string>() ?? line;
        }
        catch (System.Text.Json.JsonException)
        {
            return line;
        }
    }

    /// <summary>Sends SIGTERM, as systemd or Kubernetes would.</summary>
    public async Task TerminateAsync()
    {
        using var kill = System.Diagnostics.Process.Start("kill", ["-TERM", Process.Id.ToString()]);
        await kill.WaitForExitAsync();
    }

    public async Task<int> ExitCodeAsync()
    {
        await Process.WaitForExitAsync(new CancellationTokenSource(WsClient.Patience).Token);
        Process.WaitForExit(); // flushes the redirected output
        return Process.ExitCode;
    }

    public ValueTask DisposeAsync() => _watched.DisposeAsync();
}
