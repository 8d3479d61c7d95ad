using Microsoft.FSharp.Collections;
using Ws2s.Protocol;
using Ws2s.AspNetCore.Sessions;
using Ws2s.AspNetCore.Telemetry;
using Ws2s.AspNetCore.Websockify;

namespace Ws2s.AspNetCore;

/// <summary>
/// The WebSocket endpoints' handler: the websockify protocol relays raw binary frames to a named
/// target; the ws2s protocol takes requests; Wisp multiplexes streams. All only once the handshake is valid and admitted.
/// </summary>
internal static class Ws2sEndpoint
{
    /// <summary>Which protocol an endpoint speaks.</summary>
    public enum Speaks
    {
        Ws2s,
        Websockify,
        Wisp,
        Wsproxy,
    }

    /// <summary>What a plain HTTP request to a WebSocket endpoint gets.</summary>
    public const string NotAHandshake = "this is a WebSocket endpoint; open it with new WebSocket(\"ws://…\")";

    internal static async Task ServeAsync(HttpContext context, Speaks speaks, Ws2sEndpointOptions endpoint)
    {
        var websockify = speaks == Speaks.Websockify;
        if (!context.RequestServices.GetRequiredService<Admission.AdmissionPolicy>().Hosts.Allows(context.Request.Host))
        {
            await MisdirectedAsync(context);
            return;
        }
        var problem = WebSocketUpgrade.IsAttempt(context.Request) ? WebSocketUpgrade.Problem(context) : NotAHandshake;
        if (problem is not null)
        {
            await UpgradeRequiredAsync(context, problem);
            return;
        }
        var services = context.RequestServices;
        var sessions = services.GetRequiredService<RunnerServices>();
        var metrics = services.GetRequiredService<Ws2sMetrics>();
        WebsockifyTargets.Target? target = null;
        var admission = services.GetRequiredService<Admission.AdmissionPolicy>();
        // On the websockify endpoint ?token= names the target; a signed token there names it in its host and port claims.
        var queryTokenIsAccessToken = !websockify;
        if (speaks == Speaks.Wsproxy)
        {
            // The last segment is the target, host:port ([v6]:port); it is judged by the policy when the session dials it.
            var text = Uri.UnescapeDataString(context.Request.RouteValues["target"] as string ?? "");
            var colon = text.LastIndexOf(':');
            target = colon > 0 && long.TryParse(text[(colon + 1)..], out var port) ? WebsockifyTargets.Of(text[..colon], port) : null;
            if (target is null)
            {
                await RefuseAsync(context, metrics, StatusCodes.Status400BadRequest,
                    $"a wsproxy URL ends in the target host:port (e.g. /wsproxy/example.com:443); '{text}' is not one", "target");
                return;
            }
        }
        if (websockify)
        {
            // websockify 0.10 and later speak binary only: a client that offers only base64 gets 400, as there.
            var offered = context.WebSockets.WebSocketRequestedProtocols;
            if (offered.Contains("base64") && !offered.Contains("binary"))
            {
                await RefuseAsync(context, metrics, StatusCodes.Status400BadRequest,
                    "this endpoint speaks the binary subprotocol only (base64 is not supported)");
                return;
            }
            var name = context.Request.Query["token"].ToString();
            target = services.GetRequiredService<Configuration.LiveConfiguration>().Current.WebsockifyTargets.Find(name);
            if (target is null && admission.Jwt is { } jwt && name.Length > 0)
            {
                var (grant, refusal) = await jwt.ValidateAsync(name);
                if (grant is null)
                {
                    await RefuseAsync(context, metrics, StatusCodes.Status401Unauthorized, refusal!);
                    return;
                }
                if (grant.Target is not { } claimed || WebsockifyTargets.Of(claimed.Host, claimed.Port) is not { } named)
                {
                    await RefuseAsync(context, metrics, StatusCodes.Status404NotFound, "the token names no target (host and port claims)");
                    return;
                }
                target = named;
                queryTokenIsAccessToken = true; // the same token admits the session
            }
            if (target is null)
            {
                await RefuseAsync(context, metrics, StatusCodes.Status404NotFound,
                    "no websockify target by that token (see rawTargets and rawTokenFile in the config)");
                return;
            }
        }
        // Wisp speaks v2 with a client that offers a subprotocol; only such a client can present its token later.
        var wispVersion2 = speaks == Speaks.Wisp ? WispVersion2Protocol(context) : null;
        var verdict = await admission.JudgeAsync(context, queryTokenIsAccessToken, preferredSubProtocol: speaks switch
        {
            Speaks.Websockify => "binary",
            Speaks.Wisp => wispVersion2,
            Speaks.Wsproxy => null,
            _ => "ws2s",
        }, credentialsLater: wispVersion2 is not null,
            resumeAttempt: speaks == Speaks.Ws2s && context.Request.Query["instance"] == sessions.Resumes?.Instance);
        if (verdict.Lease is null)
        {
            await RefuseAsync(context, metrics, verdict.Status, verdict.Refusal!);
            return;
        }
        // The session holds its lease (and the slot of a session that owes its token) from here: past this request, if it is suspended.
        var lease = verdict.Lease;
        var settings = verdict.Settings!; // an admitted verdict carries the settings of the configuration that admitted it
        // Admitted past the session limits to resume a session (which holds the slot): that is all it may do.
        if (verdict.ResumeOnly) settings = Session.onlyToResume(settings);
        // A signed token narrows the session: its allow rules are one more scope, and it may forbid SSH.
        if (verdict.Grant is { } granted)
        {
            if (granted.Allow is { } allowed) settings = Session.narrowTo(ListModule.OfSeq(allowed), settings);
            if (!granted.Ssh) settings = Session.withoutSsh(settings);
        }
        // The endpoint's scope and the app's (IWs2sBuilder.AddDestinationScope) narrow it further, each on top of the rest.
        foreach (var scope in services.GetServices<DestinationScope>().Select(s => s.Rules).Prepend(endpoint.Destinations))
        {
            if (scope?.Invoke(context) is not { } scoped) continue;
            var rules = scoped.Select(Policy.parseRule).ToList();
            if (rules.Where(r => r.IsError).Select(r => r.ErrorValue).FirstOrDefault() is { } badRule)
            {
                sessions.Log.LogError("the application's destination scope for {Path} has a bad rule: {Problem}", context.Request.Path, badRule);
                context.Response.StatusCode = StatusCodes.Status500InternalServerError;
                return;
            }
            settings = Session.narrowTo(ListModule.OfSeq(rules.Select(r => r.ResultValue)), settings);
        }
        ISessionProtocol protocol = speaks switch
        {
            Speaks.Websockify or Speaks.Wsproxy => new WebsockifyProtocol(settings, target!.Value.Destination),
            Speaks.Wisp => new WispProtocol(settings, WispSettings(context, wispVersion2 is not null && verdict.SubProtocol == wispVersion2, verdict.CredentialsPending)),
            _ => new Ws2sProtocol(settings),
        };
        await using var upgrade = await WebSocketUpgrade.AcceptAsync(context, verdict.SubProtocol, sessions.KeepAlive);
        // The token's subject names the session in its log lines (never the token itself).
        var clientAddress = Admission.ClientAddress.Of(context);
        var client = $"{clientAddress}:{context.Connection.RemotePort} {context.Request.Path}"
            + (verdict.Grant?.Subject is { } subject ? $" sub={subject}" : "");
        var socket = new ClientSocket(upgrade.Socket,
            new ClientTcp(context.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionSocketFeature>()?.Socket), client, context.Abort);
        var runner = new SessionRunner(socket, protocol, sessions, new SessionObserver(metrics, sessions.Log, client, sessions.Time, speaks.ToString().ToLowerInvariant()),
            new SessionClient(clientAddress, verdict.Grant?.Expires, verdict.Unproven,
                new Both(lease, verdict.Unproven), speaks == Speaks.Ws2s ? verdict.Identity : null));
        // ApplicationStopping fires before Kestrel stops, so every client still gets its close frame (1001);
        // Kestrel then waits for the sessions to finish, up to the shutdown timeout. The request lasts as long as a session
        // speaks through its WebSocket: the session may outlive it (suspended), or another session may take it over (a resume).
        _ = runner.RunAsync(services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping);
        await socket.Released;
    }

    /// <summary>Two holds released together (the session's lease, and its slot among those that owe a token).</summary>
    private sealed class Both(IDisposable? first, IDisposable? second) : IDisposable
    {
        public void Dispose()
        {
            first?.Dispose();
            second?.Dispose();
        }
    }

    /// <summary>
    /// The subprotocol a Wisp v2 client offered (spec: v2 when the upgrade has <c>Sec-WebSocket-Protocol</c>; wisp-js
    /// offers <c>wisp-v2</c>), echoed so that a browser accepts the handshake; a token entry alone does not ask for v2.
    /// </summary>
    private static string? WispVersion2Protocol(HttpContext context) =>
        context.WebSockets.WebSocketRequestedProtocols.FirstOrDefault(p => !p.StartsWith(Admission.TokenCheck.ProtocolPrefix, StringComparison.Ordinal));

    /// <summary>The Wisp settings in force, speaking v2 when the handshake answered with the client's v2 subprotocol.</summary>
    /// <remarks><paramref name="credentials"/>: admitted without its token, it presents it in its INFO (the password extension).</remarks>
    private static WispStreams.WispSettings WispSettings(HttpContext context, bool version2, bool credentials)
    {
        var configured = context.RequestServices.GetRequiredService<Configuration.LiveConfiguration>().Current.Wisp;
        return new WispStreams.WispSettings(configured.BufferPackets, configured.MaxStreams, configured.MaxOpensPerSecond, configured.Motd, version2, credentials);
    }

    /// <summary>HTTP 426 with <c>Sec-WebSocket-Version: 13</c> (RFC 6455 §4.2.2) and the words that say why.</summary>
    public static async Task UpgradeRequiredAsync(HttpContext context, string problem)
    {
        context.Response.StatusCode = StatusCodes.Status426UpgradeRequired;
        context.Response.Headers.SecWebSocketVersion = "13";
        await context.Response.WriteAsync($"ws2s: {problem}\n");
    }

    /// <summary>
    /// HTTP 421 for a request naming a host this server does not answer to (see <see cref="Admission.AllowedHosts"/>),
    /// with the words that say what to change. Nothing else of the server is in the answer.
    /// </summary>
    public static async Task MisdirectedAsync(HttpContext context)
    {
        if (WebSocketUpgrade.IsAttempt(context.Request)) context.RequestServices.GetRequiredService<Ws2sMetrics>().UpgradeRefused("host");
        context.Response.StatusCode = StatusCodes.Status421MisdirectedRequest;
        context.Response.Headers.CacheControl = "no-store";
        await context.Response.WriteAsync($"ws2s: {Admission.AllowedHosts.Refusal(context.Request.Host)}\n");
    }

    private static async Task RefuseAsync(HttpContext context, Ws2sMetrics metrics, int status, string why, string? counted = null)
    {
        var reason = counted ?? status switch
        {
            StatusCodes.Status401Unauthorized => "token",
            StatusCodes.Status403Forbidden => "origin",
            StatusCodes.Status404NotFound => "target",
            StatusCodes.Status400BadRequest => "subprotocol",
            _ => "limit",
        };
        metrics.UpgradeRefused(reason);
        context.Response.StatusCode = status;
        await context.Response.WriteAsync($"ws2s: {why}\n");
    }
}
