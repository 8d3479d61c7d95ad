using System.Collections.Concurrent;
using System.Diagnostics;

namespace Ws2s.Host.Tests;

/// <summary>
/// Any program run as a child (the sample app under <c>dotnet run</c>, ws2sd inside a namespace), every
/// line it prints kept, with a wait for a line that matches. Disposing it kills it and its children.
/// </summary>
public sealed class WatchedProcess : IAsyncDisposable
{
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly SemaphoreSlim _printed = new(0);

    private WatchedProcess(Process process) => Process = process;

    public Process Process { get; }

    /// <summary>Everything printed so far, stdout and stderr interleaved as they arrived.</summary>
    public string Output => string.Join("\n", _lines);

    /// <summary>The same, a line each.</summary>
    public IReadOnlyCollection<string> Lines => _lines;

    /// <param name="environment">Variables to set (a null value removes one).</param>
    public static WatchedProcess Start(string file, IEnumerable<string> args, string? workingDirectory = null,
        IReadOnlyDictionary<string, string?>? environment = null)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var arg in args) info.ArgumentList.Add(arg);
        if (workingDirectory is not null) info.WorkingDirectory = workingDirectory;
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null) info.Environment.Remove(name);
            else info.Environment[name] = value;
        }
        var watched = new WatchedProcess(new Process { StartInfo = info });
        watched.Process.OutputDataReceived += (_, e) => watched.Add(e.Data);
        watched.Process.ErrorDataReceived += (_, e) => watched.Add(e.Data);
        watched.Process.Start();
        watched.Process.BeginOutputReadLine();
        watched.Process.BeginErrorReadLine();
        return watched;
    }

    private void Add(string? line)
    {
        if (line is null) return;
        _lines.Enqueue(line);
        _printed.Release();
    }

    /// <summary>
    /// The first line that satisfies <paramref name="wanted"/>, waiting for it (fails after <paramref name="patience"/>,
    /// twice <see cref="WsClient.Patience"/> unless given, or once the process has exited without it).
    /// </summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> wanted, TimeSpan? patience = null)
    {
        var deadline = DateTime.UtcNow + (patience ?? WsClient.Patience * 2);
        while (true)
        {
            if (_lines.FirstOrDefault(wanted) is { } line) return line;
            if (Process.HasExited && await DrainedAsync(deadline) && _lines.FirstOrDefault(wanted) is null)
                throw new InvalidOperationException($"{Process.StartInfo.FileName} exited ({Process.ExitCode}) without printing the expected line:\n{Output}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{Process.StartInfo.FileName} did not print the expected line:\n{Output}");
            await _printed.WaitAsync(TimeSpan.FromMilliseconds(500));
        }
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
        try
        {
            if (!Process.HasExited) Process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // It ended in between.
        }
        await Process.WaitForExitAsync();
        Process.Dispose();
    }
}
