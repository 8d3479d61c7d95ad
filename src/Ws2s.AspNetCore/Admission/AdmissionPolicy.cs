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
public sealed class AdmissionPolicy : IDisposable
{
    private readonly Ws2sOptions _options;
    private readonly IServer _server;
    private readonly ClientQuotas _limits;
    private readonly SubjectQuotas _subjects = new();

    /// <summary>Everything admission reads, taken from the options at one moment and swapped whole.</summary>
    private volatile Rules _rules;

    /// <summary>
    /// One configuration's admission rules: origins, tokens, signed-token keys, allowed hosts, and the
    /// core's settings (which also need this server's endpoints and this machine's addresses, so they
    /// are completed at first use and again after an address change). Nothing in it changes after it is
    /// made but that cache, which belongs to it alone: settings computed from an older configuration can
    /// only ever land in that configuration's rules, never in the current one's.
    /// </summary>
    private sealed class Rules(Ws2sOptions options)
    {
        public OriginPolicy Origins { get; } = new(options.Origins, options.Listen);
        public TokenCheck Tokens { get; } = TokenCheck.FromOptions(options);
        public JwtCheck? Jwt { get; } = options.Auth.Jwt is { } jwt ? new JwtCheck(jwt) : null;
        public AllowedHosts Hosts { get; } = new(options.AllowedHosts, options.Listen.Host);

        /// <summary>The core's settings without this machine (its endpoints and addresses): computed now, from these options.</summary>
        private readonly Session.Settings _template = options.ToSessionSettings([], []);

        /// <summary>The settings with this machine filled in, for the machine generation they were made in.</summary>
        private volatile Completed? _complete;

        private sealed record Completed(int Generation, Session.Settings Settings);

        public bool TokenRequired => Tokens.Required || Jwt is not null;

        public Session.Settings Settings(int machineGeneration, Func<(IEnumerable<IPEndPoint>, IEnumerable<IPAddress>)> machine)
        {
            if (_complete is { } done && done.Generation == machineGeneration) return done.Settings;
            var (own, local) = machine();
            var settings = Session.onMachine(own, local, _template);
            _complete = new(machineGeneration, settings);
            return settings;
        }
    }

    /// <summary>Counts changes of this machine's addresses: settings completed before the last one are made again.</summary>
    private int _machineGeneration;

    public AdmissionPolicy(Ws2sOptions options, IServer server)
    {
        _options = options;
        _server = server;
        _rules = new Rules(options);
        _limits = new(options.Limits.MaxSessions, options.Limits.MaxSessionsPerClient);
        NetworkChange.NetworkAddressChanged += OnAddressChanged;
    }

    /// <summary>
    /// The core's settings for a new session. The policy knows the endpoints this server is bound to
    /// (known once it listens) and this machine's interface addresses, read again when they change.
    /// </summary>
    public Session.Settings Settings => SettingsOf(_rules);

    private Session.Settings SettingsOf(Rules rules) => rules.Settings(Volatile.Read(ref _machineGeneration), () => (OwnEndpoints(_server), LocalAddresses()));

    /// <summary>Whether sessions must present a token, and how many tokens are loaded (for the start-up log).</summary>
    public (bool Required, int Count) Tokens => (_rules.TokenRequired, _rules.Tokens.Count);

    /// <summary>Signed tokens (<c>auth.jwt</c>), when configured.</summary>
    public JwtCheck? Jwt => _rules.Jwt;

    /// <summary>Whether a page of <paramref name="origin"/> may open a session (and so may read why it would be refused).</summary>
    public bool AllowsOrigin(string origin) => _rules.Origins.Allows(origin);

    /// <summary>The host names this server answers to (DNS rebinding: any other name is refused).</summary>
    public AllowedHosts Hosts => _rules.Hosts;

    private void OnAddressChanged(object? sender, EventArgs e) => Interlocked.Increment(ref _machineGeneration);

    /// <summary>
    /// Takes up the options as they are now (after a reload, called while the reload holds them still):
    /// origins, tokens, signed-token keys, allowed hosts, session limits and the core's settings apply to
    /// new sessions and new connects, all at once; open sessions go on.
    /// </summary>
    public void Reload()
    {
        _rules = new Rules(_options);
        _limits.SetLimits(_options.Limits.MaxSessions, _options.Limits.MaxSessionsPerClient);
    }

    public void Dispose() => NetworkChange.NetworkAddressChanged -= OnAddressChanged;

    /// <summary>An upgrade's verdict: 101 with the session's lease (and what a signed token granted: null for none or a static token), or a refusal in words.</summary>
    /// <remarks><c>Settings</c>: the core's settings of the same configuration that admitted the session (a reload in between cannot mix two).</remarks>
    public readonly record struct Decision(int Status, string? Refusal, IDisposable? Lease, string? SubProtocol, JwtGrant? Grant = null, Session.Settings? Settings = null);

    /// <summary>
    /// Judges an upgrade request. On the websockify endpoint <c>?token=</c> names the target (websockify's
    /// meaning), so an access token can only come as a subprotocol there.
    /// </summary>
    public async Task<Decision> JudgeAsync(HttpContext context, bool queryTokenIsAccessToken, string? preferredSubProtocol)
    {
        var request = context.Request;
        var offered = context.WebSockets.WebSocketRequestedProtocols;
        var presented = queryTokenIsAccessToken && request.Query.TryGetValue("token", out var query) ? (string?)query
            : offered.FirstOrDefault(p => p.StartsWith(TokenCheck.ProtocolPrefix, StringComparison.Ordinal))?[TokenCheck.ProtocolPrefix.Length..];
        var rules = _rules;
        var (status, refusalWords, grant) = await CheckAsync(rules, request.Headers.Origin is { Count: > 0 } origin ? origin.ToString() : null, presented);
        if (status != StatusCodes.Status200OK) return new(status, refusalWords, null, null);
        var lease = _limits.TryEnter(ClientAddress.Of(context), out var refusal);
        if (lease is null) return new(StatusCodes.Status503ServiceUnavailable, refusal, null, null);
        if (grant is { Subject: { } subject, MaxSessions: { } most })
        {
            var held = _subjects.TryEnter(subject, most);
            if (held is null)
            {
                lease.Dispose();
                return new(StatusCodes.Status503ServiceUnavailable, $"the token's subject has {most} session{(most == 1 ? "" : "s")} open already (its maxSessions)", null, null);
            }
            lease = new Both(lease, held);
        }
        return new(StatusCodes.Status101SwitchingProtocols, null, lease, ChooseSubProtocol(offered, preferredSubProtocol), grant,
            SettingsOf(rules));
    }

    /// <summary>
    /// The subprotocol to answer with: the endpoint's own when offered, else the token entry (a browser that
    /// offered only that fails the handshake without it), else none. Never one the server does not speak.
    /// </summary>
    private static string? ChooseSubProtocol(IList<string> offered, string? preferred) =>
        preferred is not null && offered.Contains(preferred) ? preferred
        : offered.FirstOrDefault(p => p.StartsWith(TokenCheck.ProtocolPrefix, StringComparison.Ordinal));

    /// <summary>The token and origin checks of an upgrade: 200, or 401/403 with the words that say why.</summary>
    private static async Task<(int Status, string? Refusal, JwtGrant? Grant)> CheckAsync(Rules rules, string? origin, string? presented)
    {
        JwtGrant? grant = null;
        if (rules.TokenRequired)
        {
            if (presented is null)
                return (StatusCodes.Status401Unauthorized, "a token is required (?token=… or the subprotocol token.…)", null);
            if (!rules.Tokens.Accepts(presented))
            {
                if (rules.Jwt is null) return (StatusCodes.Status401Unauthorized, "the token is not valid", null);
                (grant, var why) = await rules.Jwt.ValidateAsync(presented);
                if (grant is null) return (StatusCodes.Status401Unauthorized, why, null);
            }
        }
        if (origin is not null)
        {
            if (!rules.Origins.Allows(origin))
                return (StatusCodes.Status403Forbidden, $"origin {origin} is not allowed; add it to 'origins' in the ws2s config", null);
        }
        // A client that proved itself with a token (fixed or signed) needs no Origin header: it is no page.
        else if (!rules.TokenRequired && !rules.Origins.AllowsAny)
        {
            return (StatusCodes.Status403Forbidden, "a request without an Origin header needs a token, or 'origins': [\"*\"] in the ws2s config", null);
        }
        return (StatusCodes.Status200OK, null, grant);
    }

    /// <summary>
    /// Why a page at <paramref name="origin"/> presenting <paramref name="token"/> would be refused the
    /// upgrade (the WebSocket API hides the HTTP status from the page, so the page asks): 200 and null
    /// when the token and origin would be admitted (session limits are not tried), else the status and words.
    /// </summary>
    public async Task<(int Status, string? Refusal)> ExplainAsync(string? origin, string? token)
    {
        var (status, refusal, _) = await CheckAsync(_rules, origin, string.IsNullOrEmpty(token) ? null : token);
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
