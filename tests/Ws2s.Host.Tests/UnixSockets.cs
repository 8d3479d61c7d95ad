using System.Net.Sockets;

namespace Ws2s.Host.Tests;

/// <summary>What the Unix-socket attack tests share: a listening socket in a test's folder, a config listing paths, and "nobody came".</summary>
internal static class UnixSockets
{
    /// <summary>A listening Unix socket at <paramref name="name"/> in <paramref name="folder"/>.</summary>
    public static (Socket Listener, string Path) Listen(string folder, string name)
    {
        var path = Path.Combine(folder, name);
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(16);
        return (listener, path);
    }

    /// <summary>A server on a free loopback port whose destinations.allow is <paramref name="allow"/>.</summary>
    public static TestConfig Config(string[] allow, bool serverLocal = false) => TestConfig.Defaults.With(o =>
    {
        o.AllowConnectToServerLocal = serverLocal;
        o.Destinations.Allow = [.. allow];
    });

    /// <summary>Nothing reached the socket: its accept queue is empty.</summary>
    public static void NobodyCame(Socket listener)
    {
        listener.Blocking = false;
        Assert.Throws<SocketException>(() => listener.Accept().Dispose());
    }
}
