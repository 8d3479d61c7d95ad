using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;
using Ws2s.AspNetCore.Telemetry;

namespace Ws2s.AspNetCore.Admission;

/// <summary>
/// Bounds the TCP connections the server holds, on every listener, below what the process can open
/// (a process out of file descriptors cannot even allocate executable memory, and dies). A connection
/// is <em>silent</em> until its first HTTP request arrives; a silent connection is closed when the
/// handshake timeout passes, and when the server is full the oldest silent connection makes room for
/// a new one, so a flood of connections that never speak cannot lock out clients that do.
/// </summary>
internal sealed class ConnectionGate(int maxConnections, TimeSpan handshakeTimeout, TimeProvider time, Ws2sMetrics metrics, ILogger<ConnectionGate> log)
{
    private readonly ConcurrentDictionary<string, Silent> _silent = new();
    private readonly Lock _warnGate = new();
    private int _open;
    private long _refusedSinceWarning;
    private DateTimeOffset _lastWarning = DateTimeOffset.MinValue;

    /// <summary>How often at most the "server full" warning is logged (it says how many were refused meanwhile).</summary>
    private static readonly TimeSpan WarningInterval = TimeSpan.FromSeconds(10);

    public int MaxConnections => maxConnections;

    /// <summary>Connections held now.</summary>
    public int Open => Volatile.Read(ref _open);

    /// <summary>Connections held now that have not made their first request (the ones that may be closed to make room).</summary>
    public int SilentCount => _silent.Count;

    private sealed class Silent(ConnectionContext connection, long since)
    {
        public ConnectionContext Connection => connection;
        public long Since => since;
        public ITimer? Deadline;
    }

    /// <summary>Signalled whenever a connection leaves, so an accept waiting for room can go on.</summary>
    private readonly SemaphoreSlim _left = new(0);

    /// <summary>How long an accept waits for an evicted silent connection to let go of its place.</summary>
    private static readonly TimeSpan EvictionWait = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Decides, as a connection is accepted and before anything else runs for it, whether it may stay:
    /// a place is taken for it (released by <see cref="Wrap"/> when it ends). When the server is full the
    /// oldest silent connection is closed and its place awaited (briefly); with none to close, false:
    /// the caller closes the new connection at once. Deciding here, in the accept loop, bounds the
    /// sockets the process holds: a middleware would run only after many more had been accepted.
    /// </summary>
    public async ValueTask<bool> AdmitAsync(CancellationToken cancel)
    {
        if (TryTakePlace()) return true;
        if (!EvictOldestSilent())
        {
            Refused("limit");
            return false;
        }
        var deadline = time.GetTimestamp() + (long)(EvictionWait.TotalSeconds * time.TimestampFrequency);
        while (!TryTakePlace())
        {
            var left = TimeSpan.FromSeconds((deadline - time.GetTimestamp()) / (double)time.TimestampFrequency);
            if (left <= TimeSpan.Zero || !await _left.WaitAsync(left, cancel))
            {
                Refused("limit");
                return false;
            }
        }
        return true;
    }

    private bool TryTakePlace()
    {
        if (Interlocked.Increment(ref _open) <= maxConnections) return true;
        Interlocked.Decrement(ref _open);
        return false;
    }

    /// <summary>
    /// The connection middleware (Kestrel's <c>ListenOptions.Use</c>): admits the connection unless the accept loop
    /// did already (<see cref="GatedTransport"/>), watches it while it is silent, and gives its place back when it ends.
    /// </summary>
    public ConnectionDelegate Wrap(ConnectionDelegate next) => async connection =>
    {
        if (connection.Features.Get<GatedTransport.Admitted>() is null && !await AdmitAsync(connection.ConnectionClosed))
        {
            connection.Abort(new ConnectionAbortedException("ws2s: connection limit reached"));
            return;
        }
        var silent = new Silent(connection, time.GetTimestamp());
        _silent[connection.ConnectionId] = silent;
        silent.Deadline = time.CreateTimer(_ => Expire(connection.ConnectionId), null, handshakeTimeout, Timeout.InfiniteTimeSpan);
        try
        {
            await next(connection);
        }
        finally
        {
            Spoke(connection.ConnectionId);
            Interlocked.Decrement(ref _open);
            _left.Release();
        }
    };

    /// <summary>The connection's first request arrived: it is no longer silent (Kestrel's own timeouts take over).</summary>
    public void Spoke(string connectionId)
    {
        if (_silent.TryRemove(connectionId, out var silent)) silent.Deadline?.Dispose();
    }

    private void Expire(string connectionId)
    {
        if (!_silent.TryRemove(connectionId, out var silent)) return;
        silent.Deadline?.Dispose();
        metrics.ConnectionDropped("handshake_timeout");
        silent.Connection.Abort(new ConnectionAbortedException("ws2s: no handshake within the handshake timeout"));
    }

    /// <summary>Closes the silent connection that waited longest, if any; true if one made room.</summary>
    private bool EvictOldestSilent()
    {
        while (true)
        {
            Silent? oldest = null;
            foreach (var candidate in _silent.Values)
                if (oldest is null || candidate.Since < oldest.Since) oldest = candidate;
            if (oldest is null) return false;
            if (!_silent.TryRemove(oldest.Connection.ConnectionId, out _)) continue; // it spoke meanwhile
            oldest.Deadline?.Dispose();
            Refused("evicted_silent");
            oldest.Connection.Abort(new ConnectionAbortedException("ws2s: a silent connection made room for a new one"));
            return true;
        }
    }

    private void Refused(string reason)
    {
        metrics.ConnectionDropped(reason);
        Interlocked.Increment(ref _refusedSinceWarning);
        lock (_warnGate)
        {
            var now = time.GetUtcNow();
            if (now - _lastWarning < WarningInterval) return;
            _lastWarning = now;
        }
        log.LogWarning(
            "the server holds its maximum of {MaxConnections} connections (limits.maxConnections): {Refused} connections refused or silent ones closed since the last warning",
            maxConnections, Interlocked.Exchange(ref _refusedSinceWarning, 0));
    }

    /// <summary>
    /// The default for <c>limits.maxConnections</c>: half of the file descriptors still free when the server
    /// starts (each session holds a client and a peer socket), after a reserve of 128 for the runtime
    /// (assemblies loaded later, executable memory, logs). The runtime itself holds many: about 200
    /// for a framework-dependent build whose assemblies are separate files.
    /// </summary>
    public static int DefaultMaxConnections()
    {
        var limit = OpenFileLimit() ?? 20_000;
        var inUse = OpenFileCount() ?? 256;
        return (int)Math.Clamp((limit - inUse - 128) / 2, 16, 1_000_000);
    }

    /// <summary>File descriptors this process holds now (Linux), or null where it cannot be read.</summary>
    private static int? OpenFileCount()
    {
        try
        {
            return Directory.GetFileSystemEntries("/proc/self/fd").Length;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return null;
    }

    /// <summary>The soft RLIMIT_NOFILE from /proc/self/limits (Linux), or null where it cannot be read.</summary>
    public static long? OpenFileLimit()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/limits"))
            {
                if (!line.StartsWith("Max open files", StringComparison.Ordinal)) continue;
                var soft = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];
                return soft == "unlimited" ? null : long.Parse(soft, System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { }
        return null;
    }
}
