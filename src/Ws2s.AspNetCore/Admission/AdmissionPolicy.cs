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
    private volatile OriginPolicy _origins;
    private volatile TokenCheck _tokens;
    private readonly ClientQuotas _limits;
    private volatile JwtCheck? _jwt;
    private readonly SubjectQuotas _subjects = new();
    private Session.Settings? _settings;

    public AdmissionPolicy(Ws2sOptions options, IServer server)
    {
        _options = options;
        _server = server;
        _origins = new(options.Origins, options.Listen);
        _tokens = TokenCheck.FromOptions(options);
        _limits = new(options.Limits.MaxSessions, options.Limits.MaxSessionsPerClient);
        _jwt = options.Auth.Jwt is { } jwt ? new JwtCheck(jwt) : null;
        NetworkChange.NetworkAddressChanged += OnAddressChanged;
    }

    /// <summary>
    /// The core's settings for a new session. The policy knows the endpoints this server is bound to
    /// (known once it listens) and this machine's interface addresses, read again when they change.
    /// </summary>
    public Session.Settings Settings => Volatile.Read(ref _settings) ?? Refresh();

    /// <summary>Whether sessions must present a token, and how many tokens are loaded (for the start-up log).</summary>
    public (bool Required, int Count) Tokens => (TokenRequired, _tokens.Count);

    /// <summary>Signed tokens (<c>auth.jwt</c>), when configured.</summary>
    public JwtCheck? Jwt => _jwt;

    private bool TokenRequired => _tokens.Required || _jwt is not null;

    private Session.Settings Refresh()
    {
        var settings = _options.ToSessionSettings(OwnEndpoints(_server), LocalAddresses());
        Volatile.Write(ref _settings, settings);
        return settings;
    }

    private void OnAddressChanged(object? sender, EventArgs e) => Volatile.Write(ref _settings, null);

    /// <summary>
    /// Takes up the options as they are now (after a reload): origins, tokens, signed-token keys, session
    /// limits and the core's settings apply to new sessions and new connects; open sessions go on.
    /// </summary>
    public void Reload()
    {
        _origins = new(_options.Origins, _options.Listen);
        _tokens = TokenCheck.FromOptions(_options);
        _jwt = _options.Auth.Jwt is { } jwt ? new JwtCheck(jwt) : null;
        _limits.SetLimits(_options.Limits.MaxSessions, _options.Limits.MaxSessionsPerClient);
        Volatile.Write(ref _settings, null);
    }

    public void Dispose() => NetworkChange.NetworkAddressChanged -= OnAddressChanged;

    /// <summary>An upgrade's verdict: 101 with the session's lease (and what a signed token granted: null for none or a static token), or a refusal in words.</summary>
    public readonly record struct Decision(int Status, string? Refusal, IDisposable? Lease, string? SubProtocol, JwtGrant? Grant = null);

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
        var (status, refusalWords, grant) = await CheckAsync(request.Headers.Origin is { Count: > 0 } origin ? origin.ToString() : null, presented);
        if (status != StatusCodes.Status200OK) return new(status, refusalWords, null, null);
        var lease = _limits.TryEnter(context.Connection.RemoteIpAddress ?? IPAddress.None, out var refusal);
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
        return new(StatusCodes.Status101SwitchingProtocols, null, lease, ChooseSubProtocol(offered, preferredSubProtocol), grant);
    }

    /// <summary>
    /// The subprotocol to answer with: the endpoint's own when offered, else the token entry (a browser that
    /// offered only that fails the handshake without it), else none. Never one the server does not speak.
    /// </summary>
    private static string? ChooseSubProtocol(IList<string> offered, string? preferred) =>
        preferred is not null && offered.Contains(preferred) ? preferred
        : offered.FirstOrDefault(p => p.StartsWith(TokenCheck.ProtocolPrefix, StringComparison.Ordinal));

    /// <summary>The token and origin checks of an upgrade: 200, or 401/403 with the words that say why.</summary>
    private async Task<(int Status, string? Refusal, JwtGrant? Grant)> CheckAsync(string? origin, string? presented)
    {
        JwtGrant? grant = null;
        if (TokenRequired)
        {
            if (presented is null)
                return (StatusCodes.Status401Unauthorized, "a token is required (?token=… or the subprotocol token.…)", null);
            if (!_tokens.Accepts(presented))
            {
                if (_jwt is null) return (StatusCodes.Status401Unauthorized, "the token is not valid", null);
                (grant, var why) = await _jwt.ValidateAsync(presented);
                if (grant is null) return (StatusCodes.Status401Unauthorized, why, null);
            }
        }
        if (origin is not null)
        {
            if (!_origins.Allows(origin))
                return (StatusCodes.Status403Forbidden, $"origin {origin} is not allowed; add it to 'origins' in the ws2s config", null);
        }
        else if (!_tokens.Required && !_origins.AllowsAny)
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
        var (status, refusal, _) = await CheckAsync(origin, string.IsNullOrEmpty(token) ? null : token);
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
