using Ws2s.Host;
using Ws2s.Host.Configuration;

try
{
    var app = Ws2sServer.Build(args);
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
