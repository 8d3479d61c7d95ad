using System.Runtime.InteropServices;
using Microsoft.Extensions.Configuration;
using Ws2s.AspNetCore.Configuration;

namespace Ws2s.Host.Configuration;

/// <summary>
/// Re-reads the configuration on SIGHUP (<c>ws2sd reload</c>) and when the file's content changes, and
/// applies it to the running server: a configuration that passes the checks of the start becomes the
/// <see cref="AcceptedConfiguration"/>, whose options the library takes up whole (<see cref="LiveConfiguration"/>):
/// new sessions and connects follow it, sessions in progress go on. A configuration with problems is refused with a log line naming the keys;
/// the old one stays in force. A change is known by content, however it was made: an editor's write, a
/// rename over the file, a link re-pointed, or a Kubernetes ConfigMap update (the kubelet writes a new
/// <c>..timestamp</c> folder and renames a new <c>..data</c> link over the old; <c>config.json</c>, a link
/// through <c>..data</c>, never changes itself).
/// </summary>
internal sealed class ConfigReloader(AcceptedConfiguration accepted, LiveConfiguration live, ILogger<ConfigReloader> log, ReloadReport? report = null)
    : IHostedService, IDisposable
{
    private readonly string _path = accepted.Path;

    /// <summary>Editors write a file in several steps: act once it has been quiet this long.</summary>
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(300);

    /// <summary>Why a reload ran when it was asked for: <c>ws2sd reload</c>, <c>systemctl reload</c>, <c>kill -HUP</c>.</summary>
    public const string Hangup = "SIGHUP";

    private readonly Lock _gate = new();
    private PosixSignalRegistration? _hangup;
    private readonly List<FileSystemWatcher> _watchers = [];
    private Timer? _settle;

    /// <summary>The SHA-256 of the content last read (null: unreadable), to tell a change from a touch.</summary>
    private string? _loaded;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _loaded = Digest(_path);
        _settle = new Timer(_ => ReloadIfChanged(), null, Timeout.Infinite, Timeout.Infinite);
        if (HangupSignal.Unignore()) log.LogInformation("SIGHUP was ignored when ws2sd started (nohup?): it reloads the configuration now");
        if (!OperatingSystem.IsWindows())
            _hangup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
            {
                context.Cancel = true; // a reload, not the end
                ThreadPool.QueueUserWorkItem(_ => Reload(Hangup));
            });
        // The file's own folder: the file itself, and Kubernetes' "..data" swap beside it. Where the file is a link
        // elsewhere, also the folder of what it finally leads to.
        var full = Path.GetFullPath(_path);
        Watch(Path.GetDirectoryName(full)!, name => name == Path.GetFileName(full) || name.StartsWith("..", StringComparison.Ordinal));
        if (new FileInfo(full).ResolveLinkTarget(returnFinalTarget: true) is { } target && Path.GetDirectoryName(target.FullName) is { } targetFolder
            && targetFolder != Path.GetDirectoryName(full) && Directory.Exists(targetFolder))
            Watch(targetFolder, name => name == target.Name);
        return Task.CompletedTask;
    }

    private void Watch(string folder, Func<string, bool> concerns)
    {
        var watcher = new FileSystemWatcher(folder)
        {
            NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.Size | NotifyFilters.CreationTime,
        };
        void OnEvent(string? name)
        {
            if (name is null || !concerns(name)) return;
            try
            {
                _settle!.Change(Settle, Timeout.InfiniteTimeSpan);
            }
            catch (ObjectDisposedException)
            {
                // Stopping: an event that was already on its way.
            }
        }
        // Events lost to a full buffer (a busy log in the same folder): look at the content anyway.
        watcher.InternalBufferSize = 64 * 1024;
        watcher.Error += (_, _) => OnEvent(Path.GetFileName(_path));
        watcher.Changed += (_, e) => OnEvent(e.Name);
        watcher.Created += (_, e) => OnEvent(e.Name);
        watcher.Deleted += (_, e) => OnEvent(e.Name);
        watcher.Renamed += (_, e) =>
        {
            OnEvent(e.Name);
            OnEvent(e.OldName);
        };
        watcher.EnableRaisingEvents = true;
        _watchers.Add(watcher);
    }

    /// <summary>After a file event has settled: reload only if the content (through every link) is not what was loaded.</summary>
    private void ReloadIfChanged()
    {
        var now = Digest(_path);
        if (now is null || now == _loaded) return; // a touch, or mid-swap (the next event comes)
        Reload("the config file changed");
    }

    private static string? Digest(string file)
    {
        try
        {
            return Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(file)));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        Dispose();
        return Task.CompletedTask;
    }

    public void Reload(string why)
    {
        lock (_gate)
        {
            _loaded = Digest(_path);
            var (taken, words) = Apply();
            if (taken) log.LogInformation("config reloaded ({Why}) from {Path}: {Words}", why, _path, words);
            else log.LogError("config reload ({Why}) refused: {Problem}", why, words);
            try
            {
                // Only a SIGHUP has someone waiting for its answer (`ws2sd reload`); the file's own changes are logged.
                if (why == Hangup) report?.Write(why, taken, words);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or LinkRefusedException)
            {
                log.LogWarning("could not write the reload's outcome for `ws2sd reload`: {Problem}", e.Message);
            }
        }
    }

    /// <summary>Reads the configuration and applies it: whether it was taken, and the words that say what happened.</summary>
    private (bool Taken, string Words) Apply()
    {
        const string kept = "; the previous configuration stays in force";
        LoadedConfig next;
        try
        {
            next = ConfigFile.Read(new ConfigurationBuilder(), _path, accepted.Args);
        }
        catch (Exception e) when (e is ConfigException or IOException or UnauthorizedAccessException)
        {
            return (false, e.Message + kept);
        }
        var before = live.Last;
        try
        {
            accepted.Replace(next.Root); // the options monitor hands the new options to the library, on this thread
        }
        catch (Exception e)
        {
            // A change callback failed (an exception in an options callback): a timer thread must not take the server down.
            return (false, $"failed while applying it: {e.Message}; restart ws2sd if the server misbehaves");
        }
        if (live.Last is not { } outcome || ReferenceEquals(outcome, before))
            return (false, "the server did not take it up" + kept);
        if (outcome.Problems.Count > 0) return (false, string.Join("; ", outcome.Problems) + kept);
        List<string> restart = [.. accepted.Start.Server.Changed(next.Server), .. outcome.NeedRestart];
        return (true, "new sessions and connects follow it" + (restart.Count > 0
            ? $"; changed keys that take effect only after a restart (ws2sd restart): {string.Join(", ", restart)}" : ""));
    }

    public void Dispose()
    {
        _hangup?.Dispose();
        foreach (var watcher in _watchers) watcher.Dispose();
        _settle?.Dispose();
    }
}
