using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Ws2s.AspNetCore.Telemetry;

namespace Ws2s.AspNetCore.Configuration;

/// <summary>What a reload did: the problems that kept the old configuration, and the keys that changed but need a restart.</summary>
internal sealed record ReloadOutcome(IReadOnlyList<string> Problems, IReadOnlyList<string> NeedRestart);

/// <summary>
/// The configuration in force: one <see cref="Ws2sSnapshot"/> behind one volatile reference, replaced whole when
/// <see cref="IOptionsMonitor{TOptions}"/> reports new options (YARP's ConfigurationConfigProvider: validate, build
/// the new snapshot, swap). New sessions and new connects follow it at once; sessions in progress go on. Options
/// with problems, or whose files fail while the snapshot is built, are refused whole and logged; the previous
/// snapshot stays in force. Keys that shape the server's fixed resources are kept from <see cref="Start"/> and
/// reported as needing a restart.
/// </summary>
internal sealed partial class LiveConfiguration : IDisposable
{
    private readonly RedactedSecrets _secrets;
    private readonly ILogger _log;
    private readonly TimeProvider _time;
    private readonly IDisposable? _subscription;
    private readonly Lock _gate = new();
    private volatile Ws2sSnapshot _current;

    public LiveConfiguration(IOptionsMonitor<Ws2sOptions> monitor, StartValidation validation, RedactedSecrets secrets, TimeProvider time,
        ILogger<LiveConfiguration> log)
    {
        (_secrets, _log, _time) = (secrets, log, time);
        // Validated here (at the application's start at the latest): a problem fails the start, named.
        Start = monitor.CurrentValue;
        _current = new Ws2sSnapshot(Start, time);
        validation.Passed();
        _subscription = monitor.OnChange((next, name) =>
        {
            if (name == Options.DefaultName) Take(next);
        });
    }

    /// <summary>The options the server started with: what its fixed resources were made from.</summary>
    public Ws2sOptions Start { get; }

    /// <summary>The snapshot in force: take it once per decision, so that one decision sees one configuration.</summary>
    public Ws2sSnapshot Current => _current;

    /// <summary>A new snapshot is in force (raised after the swap, on the thread that took it).</summary>
    public event Action? Swapped;

    /// <summary>The outcome of the last reload (null before the first), for a program that reports it (<c>ws2sd reload</c>).</summary>
    public ReloadOutcome? Last { get; private set; }

    /// <summary>Validates <paramref name="next"/>, builds its snapshot and swaps it in; or refuses it whole, keeping the one in force.</summary>
    public ReloadOutcome Take(Ws2sOptions next)
    {
        var outcome = Swap(next);
        if (outcome.Problems.Count == 0) Swapped?.Invoke();
        return outcome;
    }

    private ReloadOutcome Swap(Ws2sOptions next)
    {
        lock (_gate)
        {
            var problems = next.Problems().ToList();
            if (problems.Count > 0) return Refused(problems);
            Ws2sSnapshot snapshot;
            try
            {
                snapshot = new Ws2sSnapshot(next, _time);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
            {
                // A file the options name changed between its check and its use.
                return Refused([$"failed while applying it: {e.Message}"]);
            }
            // Both configurations' secrets are cleaned from logs while the swap happens.
            _secrets.Replace(_current.Secrets.Concat(snapshot.Secrets));
            _current = snapshot;
            _secrets.Replace(snapshot.Secrets);
            Last = new([], [.. NeedRestart(Start, next)]);
            LogTaken(_log, Last.NeedRestart.Count == 0 ? "none" : string.Join(", ", Last.NeedRestart));
            return Last;
        }
    }

    private ReloadOutcome Refused(List<string> problems)
    {
        Last = new(problems, []);
        LogRefused(_log, string.Join("; ", problems));
        return Last;
    }

    /// <summary>Keys read once at start (the connection gate, the queue budget, SSH logins, trusted proxies) that differ.</summary>
    private static IEnumerable<string> NeedRestart(Ws2sOptions start, Ws2sOptions next)
    {
        static bool Same(object? a, object? b) => JsonSerializer.Serialize(a) == JsonSerializer.Serialize(b);
        if (!Same(start.TrustedProxies, next.TrustedProxies)) yield return "trustedProxies";
        if (start.Ssh.KnownHosts != next.Ssh.KnownHosts || start.Ssh.AcceptUnknownHostKeys != next.Ssh.AcceptUnknownHostKeys
            || start.Ssh.TimeoutSeconds != next.Ssh.TimeoutSeconds || start.Ssh.MaxSessionsPerClient != next.Ssh.MaxSessionsPerClient
            || start.Ssh.MaxKdfRounds != next.Ssh.MaxKdfRounds)
            yield return "ssh (all but allowTargets)";
        if (start.Limits.MaxConnections != next.Limits.MaxConnections) yield return "limits.maxConnections";
        if (start.Limits.MaxPendingBytesTotal != next.Limits.MaxPendingBytesTotal) yield return "limits.maxPendingBytesTotal";
        if (start.Limits.HandshakeTimeoutSeconds != next.Limits.HandshakeTimeoutSeconds) yield return "limits.handshakeTimeoutSeconds";
        if (start.Resume.Instance != next.Resume.Instance) yield return "resume.instance";
        if (start.Resume.MaxBufferedBytesTotal != next.Resume.MaxBufferedBytesTotal) yield return "resume.maxBufferedBytesTotal";
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Debug, Message = "ws2s options reloaded: new sessions and connects follow them; changed keys that need a restart: {NeedRestart}")]
    private static partial void LogTaken(ILogger log, string needRestart);

    [LoggerMessage(EventId = 2, Level = LogLevel.Error, Message = "ws2s options reload refused: {Problems}; the previous options stay in force")]
    private static partial void LogRefused(ILogger log, string problems);

    public void Dispose() => _subscription?.Dispose();
}

/// <summary>
/// Whether ws2s's options have passed their check at start. Until then, <see cref="IValidateOptions{TOptions}"/> fails
/// options with problems (the start fails, each problem named); after, <see cref="LiveConfiguration"/> judges each
/// reload itself, so that options with problems are refused and reported rather than lost in a change callback.
/// </summary>
internal sealed class StartValidation
{
    private volatile bool _passed;

    public bool HasPassed => _passed;

    public void Passed() => _passed = true;
}
