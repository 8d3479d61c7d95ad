namespace Ws2s.AspNetCore;

/// <summary><c>app.MapWs2s("/ws2s")</c>, <c>app.MapWebsockify("/websockify")</c> and <c>app.MapWisp("/wisp/")</c>: the WebSocket endpoints.</summary>
public static class Ws2sEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Serves the ws2s protocol (JSON, with its binary mode) at <paramref name="pattern"/>. A request
    /// that is not a WebSocket handshake gets 426. The returned builder takes the usual conventions
    /// (<c>RequireAuthorization()</c>, <c>RequireCors()</c>, <c>RequireRateLimiting()</c>…).
    /// </summary>
    /// <param name="endpoints">Where to map it.</param>
    /// <param name="pattern">The route, e.g. <c>/ws2s</c>.</param>
    /// <param name="configure">Per-endpoint options, e.g. <see cref="Ws2sEndpointOptions.Destinations"/> to narrow each session to what its user may reach.</param>
    public static IEndpointConventionBuilder MapWs2s(this IEndpointRouteBuilder endpoints, string pattern, Action<Ws2sEndpointOptions>? configure = null)
    {
        var options = new Ws2sEndpointOptions();
        configure?.Invoke(options);
        ExportMetrics(endpoints);
        return endpoints.Map(pattern, context => Ws2sEndpoint.ServeAsync(context, Ws2sEndpoint.Speaks.Ws2s, options)).WithDisplayName("ws2s " + pattern);
    }

    /// <summary>
    /// Serves websockify's protocol (binary frames to one target named by <c>?token=</c>, from
    /// <c>rawTargets</c> or <c>rawTokenFile</c>) at <paramref name="pattern"/>, for noVNC and other websockify clients.
    /// </summary>
    public static IEndpointConventionBuilder MapWebsockify(this IEndpointRouteBuilder endpoints, string pattern = "/websockify")
    {
        ExportMetrics(endpoints);
        return endpoints.Map(pattern, context => Ws2sEndpoint.ServeAsync(context, Ws2sEndpoint.Speaks.Websockify, new Ws2sEndpointOptions())).WithDisplayName("websockify " + pattern);
    }

    /// <summary>
    /// Serves Wisp (MercuryWorkshop's protocol, v1 and v2: many TCP streams over one WebSocket, for wisp-js, libcurl.js,
    /// epoxy) at <paramref name="pattern"/>, e.g. <c>/wisp/</c>. Each stream is judged like a ws2s <c>connect</c>
    /// (policy, scopes, limits); admission is the same as on <see cref="MapWs2s"/>. See spec/wisp.md.
    /// </summary>
    /// <param name="endpoints">Where to map it.</param>
    /// <param name="pattern">The route; Wisp clients expect it to end in <c>/</c>.</param>
    /// <param name="configure">Per-endpoint options, e.g. <see cref="Ws2sEndpointOptions.Destinations"/>.</param>
    public static IEndpointConventionBuilder MapWisp(this IEndpointRouteBuilder endpoints, string pattern = "/wisp/", Action<Ws2sEndpointOptions>? configure = null)
    {
        var options = new Ws2sEndpointOptions();
        configure?.Invoke(options);
        ExportMetrics(endpoints);
        return endpoints.Map(pattern, context => Ws2sEndpoint.ServeAsync(context, Ws2sEndpoint.Speaks.Wisp, options)).WithDisplayName("wisp " + pattern);
    }

    /// <summary>
    /// Serves wsproxy (libcurl.js's other transport: one WebSocket per TCP connection) under <paramref name="prefix"/>:
    /// <c>ws://server/PREFIX/host:port</c> relays binary frames to host:port, judged by the destination policy like any
    /// connect, with the same admission as <see cref="MapWs2s"/> (<c>?token=</c> is an access token here).
    /// </summary>
    /// <param name="endpoints">Where to map it.</param>
    /// <param name="prefix">The path before the target, ending in <c>/</c>, e.g. <c>/wsproxy/</c>.</param>
    /// <param name="configure">Per-endpoint options, e.g. <see cref="Ws2sEndpointOptions.Destinations"/>.</param>
    public static IEndpointConventionBuilder MapWsproxy(this IEndpointRouteBuilder endpoints, string prefix = "/wsproxy/", Action<Ws2sEndpointOptions>? configure = null)
    {
        var options = new Ws2sEndpointOptions();
        configure?.Invoke(options);
        ExportMetrics(endpoints);
        return endpoints.Map(prefix.TrimEnd('/') + "/{target}", context => Ws2sEndpoint.ServeAsync(context, Ws2sEndpoint.Speaks.Wsproxy, options))
            .WithDisplayName("wsproxy " + prefix);
    }

    /// <summary>Creates the instruments now, so /metrics shows every series (at 0) before the first session.</summary>
    private static void ExportMetrics(IEndpointRouteBuilder endpoints) =>
        endpoints.ServiceProvider.GetRequiredService<Sessions.QueueBudget>();
}
