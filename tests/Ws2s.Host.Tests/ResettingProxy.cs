using System.Net;
using System.Net.Sockets;

namespace Ws2s.Host.Tests;

/// <summary>
/// A TCP proxy on 127.0.0.1 to a port of this machine that a test can reset: <see cref="Reset"/> ends every connection
/// through it with an RST on both sides (as a proxy, a NAT or a Wi-Fi hand-over that loses them does), and new
/// connections are forwarded as before.
/// </summary>
public sealed class ResettingProxy : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _target;
    private readonly List<Socket> _live = [];
    private readonly CancellationTokenSource _stop = new();

    public ResettingProxy(int target)
    {
        _target = target;
        _listener.Start();
        _ = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var client = await _listener.AcceptSocketAsync(_stop.Token);
                var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                try
                {
                    await upstream.ConnectAsync(IPAddress.Loopback, _target, _stop.Token);
                }
                catch (SocketException)
                {
                    Abort(client);
                    upstream.Dispose();
                    continue;
                }
                lock (_live) _live.AddRange([client, upstream]);
                _ = PumpAsync(client, upstream);
                _ = PumpAsync(upstream, client);
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException) { }
    }

    private static async Task PumpAsync(Socket from, Socket to)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            int read;
            while ((read = await from.ReceiveAsync(buffer, SocketFlags.None)) > 0)
                await to.SendAsync(buffer.AsMemory(0, read), SocketFlags.None);
            to.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            Abort(to);
        }
    }

    private static void Abort(Socket socket)
    {
        try { socket.LingerState = new LingerOption(true, 0); }
        catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        socket.Dispose();
    }

    /// <summary>Resets every connection through the proxy (RST both ways); the next ones go through.</summary>
    public void Reset()
    {
        Socket[] live;
        lock (_live)
        {
            live = [.. _live];
            _live.Clear();
        }
        foreach (var socket in live) Abort(socket);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        Reset();
    }
}
