using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Ws2s.AspNetCore.Tests;

/// <summary>
/// An app that embeds ws2s as an application would: its <c>"Ws2s"</c> section in a JSON file it can rewrite and reload,
/// <c>AddWs2s</c>, one Kestrel listener on loopback port 0 (configured by the test), <c>MapWs2s("/ws2s")</c>, and
/// <c>/whoami</c>, which answers with the client address the app sees. Every log line is kept for the test to read.
/// </summary>
public sealed class EmbeddedApp : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly string _directory;

    private EmbeddedApp(WebApplication app, string directory, Logs logs)
    {
        (_app, _directory, Logs) = (app, directory, logs);
        Url = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
    }

    /// <summary>http://127.0.0.1:PORT/</summary>
    public Uri Url { get; }

    public IServiceProvider Services => _app.Services;

    public Logs Logs { get; }

    private string SettingsFile => Path.Combine(_directory, "appsettings.json");

    /// <param name="ws2s">The app's "Ws2s" section, as JSON.</param>
    /// <param name="listen">The listener's ws2s admission (<c>UseWs2sGate()</c>, <c>UseWs2sProxyProtocol()</c>), or nothing.</param>
    /// <param name="parts">ws2s's pluggable parts (<c>AddConnector</c>, <c>AddDestinationScope</c>).</param>
    /// <param name="services">Services registered before <c>AddWs2s</c> (a fake clock, say).</param>
    public static async Task<EmbeddedApp> StartAsync(string ws2s, Action<ListenOptions>? listen = null, Action<IWs2sBuilder>? parts = null,
        Action<IServiceCollection>? services = null)
    {
        var directory = Directory.CreateTempSubdirectory("ws2s-embedded-").FullName;
        await File.WriteAllTextAsync(Path.Combine(directory, "appsettings.json"), $$"""{"Ws2s": {{ws2s}}}""");
        var builder = WebApplication.CreateSlimBuilder();
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddJsonFile(Path.Combine(directory, "appsettings.json"), optional: false, reloadOnChange: false);
        var logs = new Logs();
        builder.Logging.ClearProviders().AddProvider(logs).SetMinimumLevel(LogLevel.Debug);
        services?.Invoke(builder.Services);
        var ws2sParts = builder.Services.AddWs2s(builder.Configuration, "Ws2s");
        parts?.Invoke(ws2sParts);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, options => listen?.Invoke(options)));
        var app = builder.Build();
        app.MapWs2s("/ws2s");
        app.MapGet("/whoami", async context =>
        {
            var client = context.Connection.RemoteIpAddress?.ToString() ?? "";
            context.Response.ContentLength = client.Length;
            await context.Response.WriteAsync(client);
        });
        await app.StartAsync();
        return new EmbeddedApp(app, directory, logs);
    }

    /// <summary>Rewrites the "Ws2s" section and reloads the app's configuration (what a watched appsettings.json does by itself).</summary>
    public async Task ReloadAsync(string ws2s)
    {
        await File.WriteAllTextAsync(SettingsFile, $$"""{"Ws2s": {{ws2s}}}""");
        ((IConfigurationRoot)_app.Configuration).Reload();
    }

    public Task<WsClient> OpenAsync() => WsClient.ConnectAsync(new Uri($"ws://{Url.Authority}/ws2s"));

    /// <summary>A raw TCP connection to the app, for bytes no HTTP client sends (a PROXY header, silence).</summary>
    public async Task<Socket> ConnectTcpAsync()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, Url.Port);
        return socket;
    }

    /// <summary>Sends <paramref name="bytes"/> and reads until the app closes the connection: what it answered.</summary>
    public async Task<string> ExchangeAsync(string bytes)
    {
        using var socket = await ConnectTcpAsync();
        await socket.SendAsync(Encoding.ASCII.GetBytes(bytes));
        return await ReadToEndAsync(socket);
    }

    /// <summary>Reads until the peer closes (or resets) the connection, within <see cref="WsClient.Patience"/>.</summary>
    public static async Task<string> ReadToEndAsync(Socket socket)
    {
        using var patience = new CancellationTokenSource(WsClient.Patience);
        var received = new MemoryStream();
        var buffer = new byte[4096];
        try
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, patience.Token) is var n and > 0) received.Write(buffer, 0, n);
        }
        catch (SocketException)
        {
            // A reset ends the connection too.
        }
        return Encoding.ASCII.GetString(received.ToArray());
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }
}

/// <summary>Every log line of the app, and a way to wait for one.</summary>
public sealed class Logs : ILoggerProvider
{
    private readonly List<string> _lines = [];
    private readonly SemaphoreSlim _added = new(0);

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lines) return [.. _lines];
        }
    }

    public async Task<string> WaitForAsync(Func<string, bool> wanted)
    {
        using var patience = new CancellationTokenSource(WsClient.Patience);
        while (true)
        {
            if (Lines.FirstOrDefault(wanted) is { } line) return line;
            await _added.WaitAsync(patience.Token);
        }
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose() { }

    private sealed class Logger(Logs logs, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (logs._lines) logs._lines.Add($"{logLevel} {category}: {formatter(state, exception)}");
            logs._added.Release();
        }
    }
}
