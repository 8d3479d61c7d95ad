using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Ws2s.Host.Configuration;
using Ws2s.Host.Sessions;
using Ws2s.Host.Websockify;

namespace Ws2s.Host;

/// <summary>Builds the ws2s web application: configuration, Kestrel, and the WebSocket endpoint.</summary>
public static class Ws2sServer
{
    /// <summary>
    /// Reads the configuration (file, then <c>WS2S_*</c> environment variables, then the command line)
    /// and builds the server. Throws <see cref="ConfigException"/> with a message naming what to fix.
    /// </summary>
    public static WebApplication Build(string[] args)
    {
        var configPath = ConfigFile.Locate(args);
        try
        {
            ConfigFile.EnsureExists(configPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"cannot create the config file {configPath}: {e.Message}");
        }

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args });
        var options = new Ws2sOptions();
        try
        {
            builder.Configuration.Sources.Clear();
            builder.Configuration
                .AddJsonFile(configPath, optional: false, reloadOnChange: false)
                .AddEnvironmentVariables("WS2S_")
                .AddCommandLine(args);
            builder.Configuration.Bind(options);
        }
        catch (InvalidDataException e)
        {
            throw new ConfigException($"{configPath} is not valid JSON: {e.InnerException?.Message ?? e.Message}");
        }
        catch (InvalidOperationException e)
        {
            throw new ConfigException($"{configPath}: {e.Message}");
        }
        var problems = options.Problems().ToList();
        if (problems.Count > 0)
            throw new ConfigException($"{configPath}: " + string.Join("; ", problems));

        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton<Admission.Admission>();
        builder.Services.AddSingleton(new RawTargets(options.RawTargets, options.RawTokenFile));
        builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = TimeSpan.FromSeconds(10));
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
        builder.WebHost.UseKestrel(kestrel =>
        {
            kestrel.Listen(options.ListenAddress()!, options.Listen.Port, listen => listen.Protocols = HttpProtocols.Http1);
            kestrel.AddServerHeader = false;
            kestrel.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(options.Limits.HandshakeTimeoutSeconds);
        });

        var app = builder.Build();
        app.UseWebSockets(); // recognises upgrade requests; the handshake itself is WebSocketUpgrade's
        app.Run(context => ServeAsync(context, options));
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            foreach (var url in ListeningUrls(app)) Console.WriteLine($"ws2s listening on {url} (config: {configPath})");
        });
        return app;
    }

    /// <summary>The ws:// URLs the server is bound to (after start; port 0 resolved to the real port).</summary>
    public static IEnumerable<string> ListeningUrls(WebApplication app) =>
        app.Urls.Select(url => url.Replace("http://", "ws://", StringComparison.Ordinal).TrimEnd('/') + "/");

    /// <summary>
    /// <c>/websockify</c> (and below) relays raw binary frames to a named target; any other path speaks
    /// the ws2s protocol, as the original accepted any. Both only once admitted.
    /// </summary>
    private static async Task ServeAsync(HttpContext context, Ws2sOptions options)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = StatusCodes.Status426UpgradeRequired;
            await context.Response.WriteAsync("ws2s: this is a WebSocket endpoint; open it with new WebSocket(\"ws://…\")\n");
            return;
        }
        var services = context.RequestServices;
        var admission = services.GetRequiredService<Admission.Admission>();
        var websockify = context.Request.Path.StartsWithSegments("/websockify");
        RawTargets.Target? target = null;
        if (websockify)
        {
            target = services.GetRequiredService<RawTargets>().Find(context.Request.Query["token"].ToString());
            if (target is null)
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                await context.Response.WriteAsync("ws2s: no websockify target by that token (see rawTargets and rawTokenFile in the config)\n");
                return;
            }
        }
        var verdict = admission.Judge(context, queryTokenIsAccessToken: !websockify, preferredSubProtocol: websockify ? "binary" : "ws2s");
        if (verdict.Lease is null)
        {
            context.Response.StatusCode = verdict.Status;
            await context.Response.WriteAsync($"ws2s: {verdict.Refusal}\n");
            return;
        }
        using var lease = verdict.Lease;
        IMachine machine = target is { } t ? new RawMachine(admission.Settings, t.Host, t.Port) : new JsonMachine(admission.Settings);
        await using var upgrade = await WebSocketUpgrade.AcceptAsync(context, verdict.SubProtocol, TimeSpan.FromSeconds(30));
        var log = services.GetRequiredService<ILoggerFactory>().CreateLogger("Ws2s.Session");
        var runner = new SessionRunner(upgrade.Socket, machine, options.Limits.MaxMessageBytes, log);
        // ApplicationStopping fires before Kestrel stops, so every client still gets its close frame (1001);
        // Kestrel then waits for the sessions to finish, up to the shutdown timeout.
        await runner.RunAsync(services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping);
    }
}
