using System.Net;
using System.Net.Sockets;

namespace Ws2s.Host.Tests;

/// <summary>Ports on 127.0.0.1 for the servers tests start themselves.</summary>
public static class Loopback
{
    /// <summary>A port nothing listens on right now (a server the test starts binds it next).</summary>
    public static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    /// <summary>Waits (with a deadline) until something accepts TCP connections on the port.</summary>
    public static async Task WaitUntilListeningAsync(int port)
    {
        var deadline = DateTime.UtcNow + WsClient.Patience;
        while (true)
        {
            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await probe.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }
        }
    }
}
