using Ws2s.AspNetCore.Configuration;
using Ws2s.AspNetCore.Connectors;

namespace Ws2s.AspNetCore.Sessions;

/// <summary>What every session runner of this server shares: its limits, its clock, queue budget, connectors and log.</summary>
/// <remarks><paramref name="limits"/>: the limits in force (the configuration's current snapshot; a reload replaces them).</remarks>
internal sealed class RunnerServices(Func<Ws2sOptions.LimitOptions> limits, TimeProvider time, QueueBudget budget, ConnectorSet connectors, ILoggerFactory logs,
    SettingsInForce? settings = null, Admission.AdmissionPolicy? admission = null, ResumeRegistry? resumes = null, QueueBudget? kept = null)
{
    /// <summary>The server-wide bound on the peer bytes resumable connections keep (<c>resume.maxBufferedBytesTotal</c>).</summary>
    public QueueBudget Kept { get; } = kept ?? new QueueBudget(budget.Limit);

    /// <summary>This server's resumable sessions by their tokens (null: sessions cannot be resumed here).</summary>
    public ResumeRegistry? Resumes => resumes;

    /// <summary>Judges a token presented in the connection (Wisp's password extension), as at the upgrade.</summary>
    public Admission.AdmissionPolicy? Admission => admission;

    /// <summary>The server's session settings in force (they change on reload and when this machine's addresses change), and who to tell.</summary>
    public SettingsInForce? Settings => settings;

    /// <summary>What TLS connections to destinations trust (the configuration's in force).</summary>
    public TlsTrust Tls => connectors.Tls.Trust;

    /// <summary>How sessions reach their peers: a connector per scheme, and the TLS step.</summary>
    public ConnectorSet Connectors => connectors;

    public int MaxMessageBytes => limits().MaxMessageBytes;

    /// <summary>The peer connections each client address holds, over all its sessions and Wisp streams.</summary>
    public Admission.ClientQuotas PeerConnections { get; } = new("peer connections");

    public int MaxPeerConnectionsPerClient => limits().MaxPeerConnectionsPerClient;

    /// <summary>The host names each client address has had looked up this second, over all its sessions and Wisp streams.</summary>
    private readonly Admission.ClientRates _lookups = new(time);

    /// <summary>
    /// Takes a name lookup of <paramref name="client"/>'s rate; null, or the words of a refusal once it is over it (a Wisp
    /// client could otherwise have this server ask its resolver about a hundred names a second per WebSocket).
    /// </summary>
    public string? LookupRefusal(System.Net.IPAddress client)
    {
        var perSecond = limits().MaxLookupsPerClientPerSecond;
        return _lookups.Take(client, (1, perSecond)) ? null : $"too many name lookups from this client (limits.maxLookupsPerClientPerSecond: {perSecond} a second)";
    }

    /// <summary>Between the keep-alive frames sent to each client.</summary>
    public TimeSpan KeepAlive => TimeSpan.FromSeconds(limits().KeepAliveSeconds);

    /// <summary>Where sessions read time and make their one timer (injected, so tests can control it).</summary>
    public TimeProvider Time => time;

    public QueueBudget Budget => budget;

    public ILogger Log { get; } = logs.CreateLogger("Ws2s.Session");
}
