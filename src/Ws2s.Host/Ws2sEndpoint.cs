using Ws2s.Host.Configuration;
using Ws2s.Host.Sessions;
using Ws2s.Host.Telemetry;
using Ws2s.Host.Websockify;

namespace Ws2s.Host;

/// <summary>
/// The WebSocket endpoints: <c>/websockify</c> (and below) relays raw binary frames to a named
/// target; any other path speaks the ws2s protocol, as the original accepted any. Both only once admitted.
/// </summary>
internal static class Ws2sEndpoint
{
    public static async Task ServeAsync(HttpContext context, Ws2sOptions options)
    {
        var services = context.RequestServices;
        var metrics = services.GetRequiredService<Ws2sMetrics>();
        var websockify = context.Request.Path.StartsWithSegments("/websockify");
        RawTargets.Target? target = null;
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
            target = services.GetRequiredService<RawTargets>().Find(context.Request.Query["token"].ToString());
            if (target is null)
            {
                await RefuseAsync(context, metrics, StatusCodes.Status404NotFound,
                    "no websockify target by that token (see rawTargets and rawTokenFile in the config)");
                return;
            }
        }
        var admission = services.GetRequiredService<Admission.Admission>();
        var verdict = admission.Judge(context, queryTokenIsAccessToken: !websockify, preferredSubProtocol: websockify ? "binary" : "ws2s");
        if (verdict.Lease is null)
        {
            await RefuseAsync(context, metrics, verdict.Status, verdict.Refusal!);
            return;
        }
        using var lease = verdict.Lease;
        IMachine machine = target is { } t ? new RawMachine(admission.Settings, t.Host, t.Port) : new JsonMachine(admission.Settings);
        await using var upgrade = await WebSocketUpgrade.AcceptAsync(context, verdict.SubProtocol, TimeSpan.FromSeconds(options.Limits.KeepAliveSeconds));
        var log = services.GetRequiredService<ILoggerFactory>().CreateLogger("Ws2s.Session");
        var client = $"{context.Connection.RemoteIpAddress}:{context.Connection.RemotePort} {context.Request.Path}";
        var runner = new SessionRunner(upgrade.Socket, machine, options.Limits.MaxMessageBytes,
            TimeSpan.FromSeconds(options.Limits.MessageTimeoutSeconds), log, metrics, client,
            services.GetRequiredService<Ssh.SshSessions>(), context.Connection.RemoteIpAddress ?? System.Net.IPAddress.None,
            services.GetRequiredService<SessionClock>(), services.GetRequiredService<QueueBudget>(),
            new ClientTcp(context.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionSocketFeature>()?.Socket));
        // ApplicationStopping fires before Kestrel stops, so every client still gets its close frame (1001);
        // Kestrel then waits for the sessions to finish, up to the shutdown timeout.
        await runner.RunAsync(services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping);
    }

    private static async Task RefuseAsync(HttpContext context, Ws2sMetrics metrics, int status, string why)
    {
        var reason = status switch
        {
            StatusCodes.Status401Unauthorized => "token",
            StatusCodes.Status403Forbidden => "origin",
            StatusCodes.Status404NotFound => "target",
            StatusCodes.Status400BadRequest => "subprotocol",
            _ => "limit",
        };
        metrics.UpgradesRefused.Add(1, new KeyValuePair<string, object?>("reason", reason));
        context.Response.StatusCode = status;
        await context.Response.WriteAsync($"ws2s: {why}\n");
    }
}
