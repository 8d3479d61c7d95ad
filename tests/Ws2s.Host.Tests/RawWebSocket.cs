using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;

namespace Ws2s.Host.Tests;

/// <summary>
/// A WebSocket client over a TCP socket the test holds: it can choose the source address (any of
/// 127.0.0.0/8), put bytes before the request (a PROXY header), add headers, and close the socket
/// with a FIN or a reset.
/// </summary>
public sealed class RawWebSocket : IDisposable
{
    private RawWebSocket(Socket tcp, string status, WebSocket? socket)
    {
        Tcp = tcp;
        Status = status;
        Socket = socket;
    }

    public Socket Tcp { get; }

    /// <summary>The response's status line, e.g. <c>HTTP/1.1 101 Switching Protocols</c>.</summary>
    public string Status { get; }

    /// <summary>The WebSocket, when the server upgraded the connection.</summary>
    public WebSocket? Socket { get; }

    public static async Task<RawWebSocket> OpenAsync(Uri url, IPAddress? source = null, byte[]? prefix = null, string headers = "")
    {
        var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        if (source is not null) tcp.Bind(new IPEndPoint(source, 0));
        await tcp.ConnectAsync(IPAddress.Loopback, url.Port);
        var stream = new NetworkStream(tcp, ownsSocket: false);
        if (prefix is not null) await stream.WriteAsync(prefix);
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"GET {url.PathAndQuery} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nOrigin: http://localhost:8080\r\n" +
            $"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{headers}\r\n"));
        // Read the response head byte by byte, so no frame byte is taken with it.
        var head = new StringBuilder();
        var one = new byte[1];
        using var patience = new CancellationTokenSource(WsClient.Patience);
        try
        {
            while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal) && await stream.ReadAsync(one, patience.Token) == 1)
                head.Append((char)one[0]);
        }
        catch (IOException) { }
        var status = head.ToString().Split("\r\n")[0];
        var socket = status.StartsWith("HTTP/1.1 101", StringComparison.Ordinal)
            ? WebSocket.CreateFromStream(stream, new WebSocketCreationOptions { IsServer = false })
            : null;
        return new RawWebSocket(tcp, status, socket);
    }

    public async Task SendTextAsync(string text) =>
        await Socket!.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);

    public async Task<string> ReceiveTextAsync()
    {
        var buffer = new byte[4096];
        using var patience = new CancellationTokenSource(WsClient.Patience);
        var result = await Socket!.ReceiveAsync(buffer, patience.Token);
        return Encoding.UTF8.GetString(buffer, 0, result.Count);
    }

    /// <summary>Closes TCP at once without a close frame: with a FIN, or with a reset (<paramref name="reset"/>).</summary>
    public void Vanish(bool reset = false)
    {
        if (reset) Tcp.LingerState = new LingerOption(true, 0);
        Tcp.Dispose();
    }

    public void Dispose() => Tcp.Dispose();
}
