using System.Collections.Concurrent;
using System.Diagnostics;

namespace Ws2s.Host.Tests;

/// <summary>
/// ws2sd as its own process, as a user runs it: every line it prints is kept, and the URLs it
/// announces are read from them. Disposing it kills it if it still runs.
/// </summary>
public sealed class ServerProcess : IAsyncDisposable
{
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly SemaphoreSlim _printed = new(0);

    private ServerProcess(Process process) => Process = process;

    public Process Process { get; }

    /// <summary>Everything printed so far, stdout and stderr interleaved as they arrived.</summary>
    public IReadOnlyCollection<string> Output => _lines;

    /// <param name="home">HOME for the process (where ~/.ws2s/config.json lives).</param>
    /// <param name="configVariable">WS2S_CONFIG, or null to leave it unset.</param>
    /// <param name="launcher">A command that runs ws2sd (e.g. <c>prlimit --nofile=256</c>), or null to run it directly.</param>
    /// <param name="environment">More variables to set.</param>
    public static ServerProcess Start(IEnumerable<string> args, string? home = null, string? configVariable = null, string[]? launcher = null,
        IReadOnlyDictionary<string, string?>? environment = null)
    {
        var info = new ProcessStartInfo(launcher?[0] ?? "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var word in launcher?.Skip(1).Append("dotnet") ?? []) info.ArgumentList.Add(word);
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "ws2sd.dll"));
        foreach (var arg in args) info.ArgumentList.Add(arg);
        if (home is not null) info.Environment["HOME"] = home;
        if (configVariable is null) info.Environment.Remove("WS2S_CONFIG");
        else info.Environment["WS2S_CONFIG"] = configVariable;
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>()) info.Environment[name] = value;
        var server = new ServerProcess(new Process { StartInfo = info });
        server.Process.OutputDataReceived += (_, e) => server.Add(e.Data);
        server.Process.ErrorDataReceived += (_, e) => server.Add(e.Data);
        server.Process.Start();
        server.Process.BeginOutputReadLine();
        server.Process.BeginErrorReadLine();
        return server;
    }

    private void Add(string? line)
    {
        if (line is null) return;
        _lines.Enqueue(line);
        _printed.Release();
    }

    /// <summary>The first line that satisfies <paramref name="wanted"/>, waiting for it (fails after <see cref="WsClient.Patience"/> or if the process exits first).</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> wanted)
    {
        var deadline = DateTime.UtcNow + WsClient.Patience;
        while (true)
        {
            if (_lines.FirstOrDefault(wanted) is { } line) return line;
            if (Process.HasExited && await DrainedAsync(deadline) && _lines.FirstOrDefault(wanted) is null)
                throw new InvalidOperationException("ws2sd exited without printing the expected line:\n" + string.Join("\n", _lines));
            if (DateTime.UtcNow > deadline) throw new TimeoutException("ws2sd did not print the expected line:\n" + string.Join("\n", _lines));
            await _printed.WaitAsync(TimeSpan.FromMilliseconds(500));
        }
    }

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
        using var kill = Process.Start("kill", ["-TERM", Process.Id.ToString()]);
        await kill.WaitForExitAsync();
    }

    public async Task<int> ExitCodeAsync()
    {
        await Process.WaitForExitAsync(new CancellationTokenSource(WsClient.Patience).Token);
        Process.WaitForExit(); // flushes the redirected output
        return Process.ExitCode;
    }

    /// <summary>
    /// After the process has exited: waits until everything it printed has been read (the end of its output, not a
    /// guess at how long its last lines take to arrive). True once read, or once something the process left behind
    /// still holds its output open at <paramref name="deadline"/>.
    /// </summary>
    private async Task<bool> DrainedAsync(DateTime deadline)
    {
        using var patience = new CancellationTokenSource(deadline - DateTime.UtcNow is { Ticks: > 0 } left ? left : TimeSpan.Zero);
        try
        {
            await Process.WaitForExitAsync(patience.Token); // with redirected output: until its end is read
        }
        catch (OperationCanceledException)
        {
            // Judged on what arrived.
        }
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        if (!Process.HasExited) Process.Kill();
        await Process.WaitForExitAsync();
        Process.Dispose();
    }
}
