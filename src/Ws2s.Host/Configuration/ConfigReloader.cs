using System.Runtime.InteropServices;
using Microsoft.Extensions.Configuration;
using Ws2s.AspNetCore.Configuration;

namespace Ws2s.Host.Configuration;

/// <summary>
/// Re-reads the configuration on SIGHUP (<c>ws2sd reload</c>) and when the file changes, and applies
/// it to the running server (<see cref="Ws2sReload"/>): new sessions and connects follow it, sessions in
/// progress go on. A configuration with problems is refused with a log line naming the keys; the old
/// one stays in force.
/// </summary>
internal sealed class ConfigReloader(string path, string[] args, Ws2sReload reload, ILogger<ConfigReloader> log) : IHostedService, IDisposable
{
    /// <summary>Editors write a file in several steps: act once it has been quiet this long.</summary>
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(300);

    private readonly Lock _gate = new();
    private PosixSignalRegistration? _hangup;
    private FileSystemWatcher? _watcher;
    private Timer? _settle;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _settle = new Timer(_ => Reload("the config file changed"), null, Timeout.Infinite, Timeout.Infinite);
        if (!OperatingSystem.IsWindows())
            _hangup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
            {
                context.Cancel = true; // a reload, not the end
                ThreadPool.QueueUserWorkItem(_ => Reload("SIGHUP"));
            });
        var full = Path.GetFullPath(path);
        _watcher = new FileSystemWatcher(Path.GetDirectoryName(full)!, Path.GetFileName(full))
        {
            NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.FileName | NotifyFilters.Size | NotifyFilters.CreationTime,
        };
        _watcher.Changed += (_, _) => _settle.Change(Settle, Timeout.InfiniteTimeSpan);
        _watcher.Created += (_, _) => _settle.Change(Settle, Timeout.InfiniteTimeSpan);
        _watcher.Renamed += (_, _) => _settle.Change(Settle, Timeout.InfiniteTimeSpan);
        _watcher.EnableRaisingEvents = true;
        return Task.CompletedTask;
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
            Ws2sOptions next;
            try
            {
                next = Ws2sServer.ReadOptions(new ConfigurationBuilder(), path, args);
            }
            catch (ConfigException e)
            {
                log.LogError("config reload ({Why}) refused: {Problem}; the previous configuration stays in force", why, e.Message);
                return;
            }
            var outcome = reload.Apply(next);
            if (outcome.Problems.Count > 0)
            {
                log.LogError("config reload ({Why}) refused: {Problems}; the previous configuration stays in force", why, string.Join("; ", outcome.Problems));
                return;
            }
            log.LogInformation("config reloaded ({Why}) from {Path}: new sessions and connects follow it", why, path);
            if (outcome.NeedRestart.Count > 0)
                log.LogWarning("changed keys that take effect only after a restart (ws2sd restart): {Keys}", string.Join(", ", outcome.NeedRestart));
        }
    }

    public void Dispose()
    {
        _hangup?.Dispose();
        _watcher?.Dispose();
        _settle?.Dispose();
    }
}
