using System.Net;
using System.Net.NetworkInformation;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Primitives;
using Ws2s.AspNetCore.Configuration;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Admission;

/// <summary>
/// Decides, before the WebSocket upgrade, whether a request may open a session: token (401),
/// origin (403), session limits (503). Every refusal carries a body that says why.
/// </summary>
internal sealed class AdmissionPolicy : IDisposable
{
    private readonly LiveConfiguration _live;
    private readonly IServer _server;
    private readonly ClientQuotas _limits = new();
    private readonly SubjectQuotas _subjects = new();
    /// <summary>Sessions admitted without the token they owe (Wisp v2 clients that will present it in the connection).</summary>
    private readonly ClientQuotas _unproven = new("connections waiting to present their token");

    /// <summary>WebSockets admitted past the session limits to resume a session that holds a slot already (a few per client).</summary>
    private readonly ClientQuotas _resumeOnly = new("WebSockets admitted to resume past the session limits");

    /// <summary>Of those, how many one client address may have at once.</summary>
    private const int ResumeOnlyPerClient = 2;

    /// <summary>Counts changes of this machine's addresses: settings completed before the last one are made again.</summary>
    private int _addressChanges;

    public AdmissionPolicy(LiveConfiguration live, IServer server)
    {
        _live = live;
        _server = server;
        NetworkChange.NetworkAddressChanged += OnAddressChanged;
        _live.Swapped += OnSwapped;
    }

    /// <summary>The core's settings (<see cref="Settings"/>) changed: a reload, or this machine's addresses.</summary>
    public event Action? SettingsChanged;

    private void OnSwapped() => SettingsChanged?.Invoke();

    /// <summary>
    /// The core's settings for a new session. The policy knows the endpoints this server is bound to
    /// (known once it listens) and this machine's interface addresses, read again when they change.
    /// </summary>
    public Session.Settings Settings => SettingsOf(_live.Current);

    private Session.Settings SettingsOf(Ws2sSnapshot rules) => rules.Settings(Volatile.Read(ref _addressChanges), () => (OwnEndpoints(_server), LocalAddresses()));

    /// <summary>Whether sessions must present a token, and how many tokens are loaded (for the start-up log).</summary>
    public (bool Required, int Count) Tokens => (_live.Current.TokenRequired, _live.Current.Tokens.Count);

    /// <summary>Signed tokens (<c>auth.jwt</c>), when configured.</summary>
    public JwtCheck? Jwt => _live.Current.Jwt;

    /// <summary>Whether a page of <paramref name="origin"/> may open a session (and so may read why it would be refused).</summary>
    public bool AllowsOrigin(string origin) => _live.Current.Origins.Allows(origin, ServerUrls);

    /// <summary>The host names this server answers to (DNS rebinding: any other name is refused).</summary>
    public AllowedHosts Hosts => _live.Current.Hosts;

    /// <summary>The URLs this server is bound to (its own pages' origins), once it listens.</summary>
    private IEnumerable<string> ServerUrls() => _server.Features.Get<IServerAddressesFeature>()?.Addresses ?? [];

    private void OnAddressChanged(object? sender, EventArgs e)
    {
        Interlocked.Increment(ref _addressChanges);
        SettingsChanged?.Invoke();
    }

    public void Dispose()
    {
        NetworkChange.NetworkAddressChanged -= OnAddressChanged;
        _live.Swapped -= OnSwapped;
    }

    /// <summary>An upgrade's verdict: 101 with the session's lease (and what a signed token granted: null for none or a static token), or a refusal in words.</summary>
    /// <remarks><c>Settings</c>: the core's settings of the same configuration that admitted the session (a reload in between cannot mix two).</remarks>
    /// <remarks><c>CredentialsPending</c>: admitted without the token it needs, to present it in the connection (Wisp's password extension) before anything else.</remarks>
    /// <remarks><c>Unproven</c>: with <c>CredentialsPending</c>, the slot among the sessions that owe a token, to release once it is presented.</remarks>
    public readonly record struct Decision(int Status, string? Refusal, IDisposable? Lease, string? SubProtocol, JwtGrant? Grant = null, Session.Settings? Settings = null,
        bool CredentialsPending = false, IDisposable? Unproven = null, Sessions.ResumeIdentity? Identity = null, bool ResumeOnly = false);

    /// <summary>
    /// Judges an upgrade request. On the websockify endpoint <c>?token=</c> names the target (websockify's
    /// meaning), so an access token can only come as a subprotocol there. <c>credentialsLater</c>: the endpoint can take
    /// the token in the connection (a Wisp v2 client): without one, the request is admitted pending it.
    /// </summary>
    /// <remarks>
    /// <c>resumeAttempt</c>: the request says it comes to resume a session of this instance (<c>?instance=</c>): past the session
    /// limits (whose slot the suspended session holds), it is admitted to do that only (<c>ResumeOnly</c>), a few per client.
    /// </remarks>
    public async Task<Decision> JudgeAsync(HttpContext context, bool queryTokenIsAccessToken, string? preferredSubProtocol, bool credentialsLater = false,
        bool resumeAttempt = false)
    {
        var request = context.Request;
        var offered = context.WebSockets.WebSocketRequestedProtocols;
        var presented = queryTokenIsAccessToken && request.Query.TryGetValue("token", out var query) ? (string?)query
            : offered.FirstOrDefault(p => p.StartsWith(TokenCheck.ProtocolPrefix, StringComparison.Ordinal))?[TokenCheck.ProtocolPrefix.Length..];
        var rules = _live.Current;
        var pending = credentialsLater && presented is null && rules.TokenRequired;
        var originText = request.Headers.Origin is { Count: > 0 } origin ? origin.ToString() : null;
        var (status, refusalWords, grant) = await CheckAsync(rules, originText, presented, pending);
        if (status != StatusCodes.Status200OK) return new(status, refusalWords, null, null);
        // Sessions that owe their token get a small share of their own (a tenth of the sessions, an eighth per client): clients
        // that present none cannot crowd out those that do.
        IDisposable? unproven = null;
        if (pending)
        {
            unproven = _unproven.TryEnter(ClientAddress.Of(context), Math.Max(16, rules.Limits.MaxSessions / 10), Math.Max(2, rules.Limits.MaxSessionsPerClient / 8), out var crowded);
            if (unproven is null) return new(StatusCodes.Status503ServiceUnavailable, crowded, null, null);
        }
        // Who a resume must be: the token that admitted the session (a fixed one only when tokens are checked) or its subject, and the Origin.
        var identity = Sessions.ResumeIdentity.Of(rules.TokenRequired && !pending ? presented : null, grant?.Subject, originText);
        var lease = _limits.TryEnter(ClientAddress.Of(context), rules.Limits.MaxSessions, rules.Limits.MaxSessionsPerClient, out var refusal);
        IDisposable? held = null;
        if (lease is not null && !HoldSubject(grant, out held, out refusal))
        {
            lease.Dispose();
            lease = null;
        }
        if (lease is null)
        {
            unproven?.Dispose();
            if (!resumeAttempt || pending || _resumeOnly.TryEnter(ClientAddress.Of(context), int.MaxValue, ResumeOnlyPerClient, out _) is not { } resuming)
                return new(StatusCodes.Status503ServiceUnavailable, refusal, null, null);
            return new(StatusCodes.Status101SwitchingProtocols, null, resuming, ChooseSubProtocol(offered, preferredSubProtocol), grant,
                SettingsOf(rules), Identity: identity, ResumeOnly: true);
        }
        if (held is not null) lease = new Both(lease, held);
        return new(StatusCodes.Status101SwitchingProtocols, null, lease, ChooseSubProtocol(offered, preferredSubProtocol), grant,
            SettingsOf(rules), pending, unproven, identity);
    }

    /// <summary>
    /// The subprotocol to answer with: the endpoint's own when offered, else the token entry (a browser that
    /// offered only that fails the handshake without it), else none. Never one the server does not speak.
    /// </summary>
    private static string? ChooseSubProtocol(IList<string> offered, string? preferred) =>
        preferred is not null && offered.Contains(preferred) ? preferred
        : offered.FirstOrDefault(p => p.StartsWith(TokenCheck.ProtocolPrefix, StringComparison.Ordinal));

    /// <summary>The token and origin checks of an upgrade: 200, or 401/403 with the words that say why.</summary>
    /// <remarks><paramref name="tokenLater"/>: no token now, one to come in the connection (only the origin is judged).</remarks>
    private async Task<(int Status, string? Refusal, JwtGrant? Grant)> CheckAsync(Ws2sSnapshot rules, string? origin, string? presented, bool tokenLater = false)
    {
        JwtGrant? grant = null;
        if (rules.TokenRequired && !tokenLater)
        {
            if (presented is null)
                return (StatusCodes.Status401Unauthorized, "a token is required (?token=… or the subprotocol token.…)", null);
            (var valid, grant, var why) = await TokenAsync(rules, presented);
            if (!valid) return (StatusCodes.Status401Unauthorized, why, null);
        }
        if (origin is not null)
        {
            if (!rules.Origins.Allows(origin, ServerUrls))
                return (StatusCodes.Status403Forbidden, $"origin {origin} is not allowed; add it to 'origins' in the ws2s config", null);
        }
        // A client that proved itself with a token (fixed or signed) needs no Origin header: it is no page.
        else if (!rules.TokenRequired && !rules.Origins.AllowsAny)
        {
            return (StatusCodes.Status403Forbidden, "a request without an Origin header needs a token, or 'origins': [\"*\"] in the ws2s config", null);
        }
        return (StatusCodes.Status200OK, null, grant);
    }

    /// <summary>A token as the configuration in force judges it: a fixed one, or a signed one and what it grants; else why not.</summary>
    private static async Task<(bool Valid, JwtGrant? Grant, string? Refusal)> TokenAsync(Ws2sSnapshot rules, string presented)
    {
        if (rules.Tokens.Accepts(presented)) return (true, null, null);
        if (rules.Jwt is null) return (false, null, "the token is not valid");
        var (grant, why) = await rules.Jwt.ValidateAsync(presented);
        return (grant is not null, grant, why);
    }

    /// <summary>
    /// A token presented in the connection after the upgrade (Wisp's password extension): admitted as at the upgrade, with
    /// what a signed one grants and a hold on its subject's sessions (<c>maxSessions</c>); else why not, in words.
    /// </summary>
    public async Task<(JwtGrant? Grant, IDisposable? Held, string? Refusal)> AdmitTokenAsync(string token)
    {
        var (valid, grant, why) = await TokenAsync(_live.Current, token);
        if (!valid) return (null, null, why ?? "the token is not valid");
        return HoldSubject(grant, out var held, out var refusal) ? (grant, held, null) : (null, null, refusal);
    }

    /// <summary>
    /// One of the session slots of a signed token's subject, when the token limits them (<c>maxSessions</c>): true with the
    /// hold (null when there is no limit), or false with the words of the refusal.
    /// </summary>
    private bool HoldSubject(JwtGrant? grant, out IDisposable? held, out string? refusal)
    {
        held = null;
        refusal = null;
        if (grant is not { Subject: { } subject, MaxSessions: { } most }) return true;
        held = _subjects.TryEnter(subject, most);
        if (held is not null) return true;
        refusal = $"the token's subject has {most} session{(most == 1 ? "" : "s")} open already (its maxSessions)";
        return false;
    }

    /// <summary>
    /// Why a page at <paramref name="origin"/> presenting <paramref name="token"/> would be refused the
    /// upgrade (the WebSocket API hides the HTTP status from the page, so the page asks): 200 and null
    /// when the token and origin would be admitted (session limits are not tried), else the status and words.
    /// </summary>
    public async Task<(int Status, string? Refusal)> ExplainAsync(string? origin, string? token)
    {
        var (status, refusal, _) = await CheckAsync(_live.Current, origin, string.IsNullOrEmpty(token) ? null : token);
        return (status, refusal);
    }

    private sealed class Both(IDisposable first, IDisposable second) : IDisposable
    {
        public void Dispose()
        {
            first.Dispose();
            second.Dispose();
        }
    }

    /// <summary>Where this server listens (the core refuses those ports on every address of this machine).</summary>
    private static IEnumerable<IPEndPoint> OwnEndpoints(IServer server)
    {
        var addresses = server.Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        foreach (var url in addresses)
        {
            var uri = new Uri(url.Replace("://+", "://0.0.0.0").Replace("://*", "://0.0.0.0"));
            if (!IPAddress.TryParse(uri.Host.Trim('[', ']'), out var address)) address = IPAddress.Loopback;
            yield return new IPEndPoint(address, uri.Port);
        }
    }

    /// <summary>This machine's interface addresses, which the policy judges like loopback.</summary>
    private static IEnumerable<IPAddress> LocalAddresses()
    {
        try
        {
            return NetworkInterface.GetAllNetworkInterfaces()
                .SelectMany(i => i.GetIPProperties().UnicastAddresses)
                .Select(a => a.Address)
                .ToList();
        }
        catch (NetworkInformationException)
        {
            return [];
        }
    }
}
