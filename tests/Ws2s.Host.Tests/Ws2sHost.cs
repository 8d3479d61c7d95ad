using Microsoft.AspNetCore.Builder;

namespace Ws2s.Host.Tests;

/// <summary>The real ws2s server, in process, on an ephemeral loopback port, with its own config file.</summary>
public sealed class Ws2sHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly string _configDirectory;

    private Ws2sHost(WebApplication app, string configDirectory)
    {
        _app = app;
        _configDirectory = configDirectory;
        Urls = Ws2sServer.ListeningUrls(app).Select(u => new Uri(u)).ToList();
        ManagementUrl = Ws2sServer.ManagementUrl(app);
        Url = Urls[0];
    }

    /// <summary>The first ws:// URL.</summary>
    public Uri Url { get; }

    /// <summary>Every WebSocket URL the server listens on (ws:// and wss://).</summary>
    public IReadOnlyList<Uri> Urls { get; }

    public IServiceProvider Services => _app.Services;

    public Uri? ManagementUrl { get; }

    public static Task<Ws2sHost> StartAsync(string configJson, params string[] extraArgs) => StartAsync(configJson, null, extraArgs);

    /// <param name="services">Replaces services before the server is built (e.g. a fake <see cref="TimeProvider"/>).</param>
    public static async Task<Ws2sHost> StartAsync(string configJson, Action<Microsoft.Extensions.DependencyInjection.IServiceCollection>? services, params string[] extraArgs)
    {
        var directory = Directory.CreateTempSubdirectory("ws2s-test-").FullName;
        var config = Path.Combine(directory, "config.json");
        await File.WriteAllTextAsync(config, configJson);
        var app = Ws2sServer.Build(["--config", config, "--listen:port", "0", .. extraArgs], services);
        await app.StartAsync();
        return new Ws2sHost(app, directory);
    }

    public static Task<Ws2sHost> StartAsync(bool allowServerLocal = true, params string[] extraArgs) =>
        StartAsync(TestConfig.Defaults.With(o => o.AllowConnectToServerLocal = allowServerLocal), extraArgs);

    public async Task<WsClient> ConnectAsync(string path = "/") =>
        await WsClient.ConnectAsync(new Uri(Url, path));

    private int _disposed;

    /// <summary>Stops the server (clients get 1001); once, however often it is called.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        await _app.StopAsync();
        await _app.DisposeAsync();
        Directory.Delete(_configDirectory, recursive: true);
    }
}
