using System.Reflection;
using Ws2s.Host;
using Ws2s.Host.Configuration;

// ws2sd [run] [--config PATH] [--key:path value …] | probe URL | --version | --help
if (args.Contains("--version"))
{
    Console.WriteLine($"ws2sd {typeof(Ws2sServer).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]}");
    return 0;
}
if (args is ["probe", var url])
{
    // A health check for images without curl: exit 0 when the URL answers 2xx.
    using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
    try
    {
        return (await http.GetAsync(url)).IsSuccessStatusCode ? 0 : 1;
    }
    catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
    {
        return 1;
    }
}
if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine("""
        ws2sd: a WebSocket to TCP bridge (the ws2s protocol, and websockify at /websockify)

        usage: ws2sd [run] [--config PATH] [--log-format json] [--SECTION:KEY VALUE …]
               ws2sd probe URL       exit 0 if URL answers 2xx (a health check, e.g. http://127.0.0.1:3614/readyz)
               ws2sd --version | --help

          run                 serve in the foreground (the default; stop with Ctrl+C or SIGTERM)
          --config PATH       the configuration file (default ~/.ws2s/config.json, or $WS2S_CONFIG)
          --log-format json   one JSON object per log line
          --listen:port 4000  any configuration key can be set this way, e.g. --limits:idleTimeoutSeconds 60

        Exit codes: 0 stopped cleanly, 2 bad configuration or cannot listen.
        """);
    return 0;
}

try
{
    var app = Ws2sServer.Build(args.Where(a => a != "run").ToArray());
    await app.RunAsync();
    return 0;
}
catch (ConfigException e)
{
    Console.Error.WriteLine($"ws2s: config error: {e.Message}");
    return 2;
}
catch (IOException e) when (e.InnerException is System.Net.Sockets.SocketException)
{
    Console.Error.WriteLine($"ws2s: cannot listen: {e.Message}");
    return 2;
}
