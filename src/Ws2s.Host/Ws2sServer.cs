using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.FileProviders;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using Ws2s.AspNetCore;
using Ws2s.AspNetCore.Admission;
using Ws2s.AspNetCore.Configuration;
using Ws2s.AspNetCore.Telemetry;
using Ws2s.Host.Configuration;

namespace Ws2s.Host;

/// <summary>Builds the ws2s web application: configuration, Kestrel, the WebSocket endpoints and the management endpoints.</summary>
public static partial class Ws2sServer
{
    /// <summary>
    /// Reads the configuration (file, then <c>WS2S_*</c> environment variables, then the command line)
    /// and builds the server. Throws <see cref="ConfigException"/> with a message naming what to fix.
    /// <paramref name="services"/>, when given, registers services first (an embedding test's clock, say).
    /// </summary>
    public static WebApplication Build(string[] args, Action<IServiceCollection>? services = null)
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

        // The builder's default sources (appsettings.json, replaced below) would otherwise leave a file
        // watcher on the working directory for the life of the server.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = ["--hostBuilder:reloadConfigOnChange=false", .. args] });
        builder.Configuration.Sources.Clear();
        var loaded = ConfigFile.Read(builder.Configuration, configPath, args);
        var (options, server) = (loaded.Options, loaded.Server);
        var accepted = new AcceptedConfiguration(loaded, configPath, args);

        services?.Invoke(builder.Services);
        var jsonLogs = ConfigureLogging(builder);
        // Kestrel's sockets, registered before AddWs2s so that it puts the connection gate in their accept loop.
        builder.Services.RemoveAll<IConnectionListenerFactory>();
        builder.Services.AddSingleton<IConnectionListenerFactory, SocketTransportFactory>();
        // Kestrel hands a connection's bytes on the thread that received them (no hop through its I/O queues): with the
        // inline completions ws2s asks for on a WebSocket's socket, a relayed message crosses no thread. Unsafe only for
        // code that blocks there; ws2s's sessions never do, and plain HTTP requests still complete on the thread pool.
        // UseSockets also hands the transport the memory pool from DI (LargeBlockPool, registered after UseKestrel below).
        builder.WebHost.UseSockets(sockets => sockets.UnsafePreferInlineScheduling = true);
        // ws2s's options are bound from the accepted configuration, and taken up again whenever a reload replaces it.
        builder.Services.AddSingleton(accepted);
        builder.Services.AddSingleton<IOptionsChangeTokenSource<Ws2sOptions>>(accepted);
        // After the logger providers: AddWs2s wraps those registered so far in log redaction.
        builder.Services.AddWs2s(o => accepted.Current.Bind(o));
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("ws2s"))
            .WithMetrics(metrics => metrics.AddMeter(Ws2sMetrics.MeterName)
                // Every scrape sees the counts of that moment (the exporter would otherwise answer from a 300 ms cache).
                .AddPrometheusExporter(prometheus => prometheus.ScrapeResponseCacheDurationMilliseconds = 0));
        AddAdmissionRateLimit(builder.Services);
        builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = TimeSpan.FromSeconds(server.ShutdownTimeoutSeconds));
        builder.Services.AddHostedService(services => new ConfigReloader(accepted, services.GetRequiredService<LiveConfiguration>(),
            services.GetRequiredService<ILogger<ConfigReloader>>(), services.GetService<ReloadReport>()));
        var managementBinding = new ManagementBinding();
        builder.Services.AddSingleton(managementBinding);
        builder.WebHost.UseKestrel(kestrel =>
        {
            var handshake = TimeSpan.FromSeconds(options.Limits.HandshakeTimeoutSeconds);
            kestrel.AddServerHeader = false;
            kestrel.Limits.RequestHeadersTimeout = handshake;
            // A connection that made one request and then idles would otherwise be held 130 s.
            kestrel.Limits.KeepAliveTimeout = handshake;
            // Every listener: the connection gate, then the PROXY header (before TLS), as an embedding app would do it.
            kestrel.Listen(server.Listen.Address()!, server.Listen.Port, listen =>
            {
                listen.Protocols = HttpProtocols.Http1;
                listen.UseWs2sGate().UseWs2sProxyProtocol();
            });
            foreach (var endpoint in server.Endpoints)
                kestrel.Listen(endpoint.Address()!, endpoint.Port, listen =>
                {
                    listen.Protocols = HttpProtocols.Http1;
                    listen.UseWs2sGate().UseWs2sProxyProtocol();
                    if (endpoint.UsesTls) listen.UseHttps(new Microsoft.AspNetCore.Server.Kestrel.Https.HttpsConnectionAdapterOptions
                    {
                        ServerCertificate = LoadCertificate(endpoint),
                        HandshakeTimeout = handshake,
                    });
                });
            if (server.Management is { } management)
                kestrel.Listen(management.Address()!, management.Port, listen =>
                {
                    listen.UseWs2sGate().UseWs2sProxyProtocol();
                    managementBinding.Listen = listen;
                });
        });
        // After UseKestrel, which registers Kestrel's own pool.
        builder.Services.RemoveAll<IMemoryPoolFactory<byte>>();
        builder.Services.AddSingleton<IMemoryPoolFactory<byte>>(new LargeBlockPool());

        var app = builder.Build();
        var trustedProxies = app.Services.GetRequiredService<TrustedProxies>();
        if (trustedProxies.Any)
        {
            // X-Forwarded-For from a trusted proxy names the client (right to left, while the hops are trusted);
            // the defaults (loopback trusted) are cleared: only trustedProxies count.
            var forwarded = new ForwardedHeadersOptions { ForwardedHeaders = ForwardedHeaders.XForwardedFor, ForwardLimit = null };
            forwarded.KnownProxies.Clear();
            forwarded.KnownIPNetworks.Clear();
            foreach (var network in trustedProxies.Networks) forwarded.KnownIPNetworks.Add(network);
            app.UseForwardedHeaders(forwarded);
        }
        // DNS rebinding: a request naming a host this server does not answer to gets 421 and nothing else, on every path.
        var admission = app.Services.GetRequiredService<AdmissionPolicy>();
        app.Use((context, next) => admission.Hosts.Allows(context.Request.Host) ? next(context) : Ws2sEndpoint.MisdirectedAsync(context));
        bool OnManagementPort(HttpContext context) => managementBinding.Listen?.IPEndPoint?.Port == context.Connection.LocalPort;
        // With a management port, it serves the management paths and nothing else (the console below never sees it)…
        app.Use((context, next) => OnManagementPort(context) && !LooksLikeManagement(context.Request.Path) ? NotFoundAsync(context) : next(context));
        // The web console at / (static files shipped beside the server, no CDN), for requests that are not upgrades:
        // any path upgrades, as the original allowed, "/" included.
        var console = new PhysicalFileProvider(Path.Combine(AppContext.BaseDirectory, "wwwroot"));
        app.UseWhen(context => context.Request.Headers.Upgrade.Count == 0,
            branch => branch.UseDefaultFiles(new DefaultFilesOptions { FileProvider = console }).UseStaticFiles(new StaticFileOptions { FileProvider = console }));
        app.UseRouting();
        // …and only it serves them, in whatever spelling the router takes (/METRICS, /metrics/): judged by the endpoint chosen.
        app.Use((context, next) =>
        {
            var management = context.GetEndpoint()?.Metadata.GetMetadata<ManagementEndpoint>() is not null;
            if (OnManagementPort(context)) return management ? next(context) : NotFoundAsync(context);
            return management && server.Management is not null ? Ws2sEndpoint.UpgradeRequiredAsync(context, Ws2sEndpoint.NotAHandshake) : next(context);
        });
        app.UseRateLimiter();
        app.MapWebsockify("/websockify/{**rest}");
        // Wisp at its path (the route matches it with or without the trailing '/'); every other path speaks ws2s.
        if (options.Wisp.Path is { Length: > 0 } wispPath) app.MapWisp(wispPath);
        if (options.Wsproxy.Path is { Length: > 0 } wsproxyPath) app.MapWsproxy(wsproxyPath);
        app.MapWs2s("/{**path}");
        MapAdmissionQuestions(app, options.Wisp.Path);
        MapManagement(app);
        if (options.Ssh.AcceptUnknownHostKeys)
            app.Logger.LogWarning("ssh.acceptUnknownHostKeys is on: SSH host keys are not checked (insecure; for trying things out only)");
        var (tokensRequired, tokenCount) = app.Services.GetRequiredService<AdmissionPolicy>().Tokens;
        if (options.Auth.Jwt is not null)
            app.Logger.LogInformation(tokenCount > 0 ? "access tokens required: a signed token (auth.jwt) or one of the {Count} static tokens"
                : "access tokens required: signed tokens (auth.jwt)", tokenCount);
        else if (tokensRequired) app.Logger.LogInformation("access tokens required: {Count} loaded", tokenCount);
        else app.Logger.LogInformation("no access token required (set tokens, tokensFile or auth.jwt to require one)");
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            // Plain lines a person (and `ws2sd start`) reads; with JSON logs, log events like every other line.
            foreach (var url in ListeningUrls(app))
                if (jsonLogs) app.Logger.LogInformation("ws2s listening on {Url} (config: {ConfigPath})", url, configPath);
                else Console.WriteLine($"ws2s listening on {url} (config: {configPath})");
            if (ManagementUrl(app) is { } management)
                if (jsonLogs) app.Logger.LogInformation("ws2s management (/healthz, /readyz, /metrics) on {ManagementUrl}", management);
                else Console.WriteLine($"ws2s management (/healthz, /readyz, /metrics) on {management}");
        });
        return app;
    }

    /// <summary>The ws:// and wss:// URLs the server is bound to (after start; port 0 resolved to the real port).</summary>
    public static IEnumerable<string> ListeningUrls(WebApplication app)
    {
        var management = ManagementUrl(app);
        return app.Urls
            .Where(url => management is null || new Uri(url).Port != management.Port)
            .Select(url => url.Replace("https://", "wss://", StringComparison.Ordinal).Replace("http://", "ws://", StringComparison.Ordinal).TrimEnd('/') + "/");
    }

    /// <summary>The management endpoint's URL once bound (Kestrel writes the real port back into its listen options), if configured.</summary>
    public static Uri? ManagementUrl(WebApplication app) =>
        app.Services.GetRequiredService<ManagementBinding>().Listen?.IPEndPoint is { } endpoint
            ? new Uri($"http://{(endpoint.Address.Equals(IPAddress.IPv6Loopback) ? "[::1]" : endpoint.Address.ToString())}:{endpoint.Port}/")
            : null;

    /// <summary>Holds the management endpoint's Kestrel listen options, to read its bound port.</summary>
    private sealed class ManagementBinding
    {
        public Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions? Listen { get; set; }
    }

    /// <summary>
    /// <c>--log-format json</c> (or <c>logFormat</c> in the config) writes one JSON object per line, every line,
    /// stamped in UTC (ISO 8601, <c>2026-12-01T15:48:00.123Z</c>). True when it does.
    /// </summary>
    private static bool ConfigureLogging(WebApplicationBuilder builder)
    {
        if (ConfigFile.LogFormat(builder.Configuration) != "json") return false;
        builder.Logging.ClearProviders();
        builder.Logging.AddJsonConsole(json =>
        {
            json.TimestampFormat = JsonTimestamp;
            json.UseUtcTimestamp = true;
        });
        return true;
    }

    /// <summary>The JSON logs' timestamp (with <c>UseUtcTimestamp</c>: the Z is true).</summary>
    public const string JsonTimestamp = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";

    private static X509Certificate2 LoadCertificate(ServerOptions.EndpointOptions endpoint) =>
        endpoint.Pfx is { } pfx
            ? X509CertificateLoader.LoadPkcs12FromFile(pfx, endpoint.PfxPassword)
            : X509Certificate2.CreateFromPemFile(endpoint.Certificate!, endpoint.Key);

    private static Task NotFoundAsync(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status404NotFound;
        return Task.CompletedTask;
    }
}
