using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Ws2s.Host.Tests;

/// <summary>A real redis-server (Debian's package) on a free loopback port, nothing saved to disk.</summary>
public sealed class RedisServer : IAsyncDisposable
{
    private readonly Process _process;

    private RedisServer(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    public static async Task<RedisServer> StartAsync()
    {
        Requirements.Need("/usr/bin/redis-server", "redis-server");
        var port = FreePort();
        var info = new ProcessStartInfo("/usr/bin/redis-server",
            ["--port", port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", Path.GetTempPath()])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        var process = Process.Start(info)!;
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        await WaitUntilListeningAsync(port);
        return new RedisServer(process, port);
    }

    internal static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    /// <summary>Waits (with a deadline) until something accepts TCP connections on the port.</summary>
    internal static async Task WaitUntilListeningAsync(int port)
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

    public async ValueTask DisposeAsync()
    {
        _process.Kill();
        await _process.WaitForExitAsync();
        _process.Dispose();
    }
}
