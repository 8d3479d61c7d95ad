using System.Buffers;
using System.Buffers.Text;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text.Json;

namespace Ws2s.Bench;

/// <summary>One byte stream to the echo server: plain TCP, or through a ws2s-protocol bridge in JSON or binary mode.</summary>
internal interface IEchoStream : IAsyncDisposable
{
    ValueTask WriteAsync(ReadOnlyMemory<byte> bytes);

    /// <summary>Reads some echoed bytes into <paramref name="into"/>; 0 at the end.</summary>
    ValueTask<int> ReadAsync(Memory<byte> into);
}

/// <summary>TLS straight to the TLS echo server, trusting its certificate: the baseline for TLS paths.</summary>
internal sealed class TlsStream(System.Net.Security.SslStream tls) : IEchoStream
{
    public static async Task<IEchoStream> OpenAsync(IPEndPoint echo, string certificateFile)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(echo);
        var trusted = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(File.ReadAllText(certificateFile)).RawData);
        var stream = new System.Net.Security.SslStream(new NetworkStream(socket, ownsSocket: true), false,
            (_, certificate, _, _) => certificate is not null && certificate.GetCertHashString() == trusted.GetCertHashString());
        await stream.AuthenticateAsClientAsync("127.0.0.1");
        return new TlsStream(stream);
    }

    public ValueTask WriteAsync(ReadOnlyMemory<byte> bytes) => tls.WriteAsync(bytes);

    public ValueTask<int> ReadAsync(Memory<byte> into) => tls.ReadAsync(into);

    public ValueTask DisposeAsync() => tls.DisposeAsync();
}

internal sealed class TcpStream(Socket socket) : IEchoStream
{
    public static async Task<IEchoStream> OpenAsync(IPEndPoint echo)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(echo);
        return new TcpStream(socket);
    }

    public async ValueTask WriteAsync(ReadOnlyMemory<byte> bytes)
    {
        while (!bytes.IsEmpty) bytes = bytes[await socket.SendAsync(bytes)..];
    }

    public ValueTask<int> ReadAsync(Memory<byte> into) => socket.ReceiveAsync(into);

    public ValueTask DisposeAsync()
    {
        socket.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// The ws2s protocol as a client speaks it: <c>connect</c>, then <c>sendb</c> (JSON mode) or binary
/// frames (binary mode). Answers (<c>sendb done</c>) are skipped; <c>recv data</c> is decoded.
/// </summary>
internal sealed class BridgeStream : IEchoStream
{
    private readonly ClientWebSocket _ws;
    private readonly bool _binary;
    // Small to start, grown on demand: the connects workload opens thousands of these.
    private byte[] _frame = new byte[4096];
    private readonly ArrayBufferWriter<byte> _request = new(256);
    private byte[] _pending = [];
    private int _pendingOffset, _pendingCount;

    private BridgeStream(ClientWebSocket ws, bool binary)
    {
        _ws = ws;
        _binary = binary;
    }

    /// <param name="tls">TLS from ws2s to the echo server (<c>"tls": true</c>).</param>
    public static async Task<IEchoStream> OpenAsync(Uri server, IPEndPoint echo, bool binary, bool tls = false)
    {
        var ws = new ClientWebSocket();
        await ws.ConnectAsync(server, CancellationToken.None);
        var stream = new BridgeStream(ws, binary);
        var connect = tls
            ? JsonSerializer.SerializeToUtf8Bytes(new { command = "connect", host = echo.Address.ToString(), port = echo.Port, binary, tls })
            : JsonSerializer.SerializeToUtf8Bytes(new { command = "connect", host = echo.Address.ToString(), port = echo.Port, binary });
        await ws.SendAsync(connect, WebSocketMessageType.Text, true, CancellationToken.None);
        var (type, length) = await stream.ReceiveFrameAsync();
        using var answer = JsonDocument.Parse(stream._frame.AsMemory(0, length));
        if (answer.RootElement.GetProperty("code").GetInt32() != 0)
            throw new InvalidOperationException($"connect failed: {answer.RootElement}");
        return stream;
    }

    public async ValueTask WriteAsync(ReadOnlyMemory<byte> bytes)
    {
        if (_binary)
        {
            await _ws.SendAsync(bytes, WebSocketMessageType.Binary, true, CancellationToken.None);
            return;
        }
        _request.ResetWrittenCount();
        var prefix = "{\"command\":\"sendb\",\"data\":\""u8;
        prefix.CopyTo(_request.GetSpan(prefix.Length));
        _request.Advance(prefix.Length);
        var span = _request.GetSpan(Base64.GetMaxEncodedToUtf8Length(bytes.Length) + 2);
        Base64.EncodeToUtf8(bytes.Span, span, out _, out var written);
        "\"}"u8.CopyTo(span[written..]);
        _request.Advance(written + 2);
        await _ws.SendAsync(_request.WrittenMemory, WebSocketMessageType.Text, true, CancellationToken.None);
    }

    public async ValueTask<int> ReadAsync(Memory<byte> into)
    {
        while (_pendingCount == 0)
        {
            var (type, length) = await ReceiveFrameAsync();
            if (type == WebSocketMessageType.Close)
            {
                Console.Error.WriteLine($"bench: the bridge closed the session: {_ws.CloseStatus} {_ws.CloseStatusDescription}");
                return 0;
            }
            if (type == WebSocketMessageType.Binary)
            {
                _pending = _frame;
                _pendingOffset = 0;
                _pendingCount = length;
                break;
            }
            using var json = JsonDocument.Parse(_frame.AsMemory(0, length));
            var code = json.RootElement.GetProperty("code").GetInt32();
            if (code == 0) continue; // an answer such as "sendb done"
            if (code != -1) throw new InvalidOperationException($"bridge said: {json.RootElement}");
            _pending = json.RootElement.GetProperty("data").GetBytesFromBase64();
            _pendingOffset = 0;
            _pendingCount = _pending.Length;
        }
        var n = Math.Min(into.Length, _pendingCount);
        _pending.AsSpan(_pendingOffset, n).CopyTo(into.Span);
        _pendingOffset += n;
        _pendingCount -= n;
        return n;
    }

    private async Task<(WebSocketMessageType Type, int Length)> ReceiveFrameAsync()
    {
        var length = 0;
        while (true)
        {
            if (length == _frame.Length) Array.Resize(ref _frame, _frame.Length * 2);
            var result = await _ws.ReceiveAsync(_frame.AsMemory(length), CancellationToken.None);
            length += result.Count;
            if (result.EndOfMessage || result.MessageType == WebSocketMessageType.Close) return (result.MessageType, length);
        }
    }

    public async ValueTask DisposeAsync()
    {
        try { await _ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", CancellationToken.None); }
        catch (WebSocketException) { }
        _ws.Dispose();
    }
}

/// <summary>
/// websockify's protocol: binary frames both ways to the one target the URL names, no JSON (ws2s's
/// <c>/websockify?token=echo</c>, or websockify itself).
/// </summary>
internal sealed class WebsockifyStream(ClientWebSocket ws) : IEchoStream
{
    public static async Task<IEchoStream> OpenAsync(Uri url)
    {
        var ws = new ClientWebSocket();
        ws.Options.AddSubProtocol("binary");
        await ws.ConnectAsync(url, CancellationToken.None);
        return new WebsockifyStream(ws);
    }

    public ValueTask WriteAsync(ReadOnlyMemory<byte> bytes) =>
        ws.SendAsync(bytes, WebSocketMessageType.Binary, true, CancellationToken.None);

    public async ValueTask<int> ReadAsync(Memory<byte> into)
    {
        var result = await ws.ReceiveAsync(into, CancellationToken.None);
        if (result.MessageType != WebSocketMessageType.Close) return result.Count;
        Console.Error.WriteLine($"bench: the bridge closed the session: {ws.CloseStatus} {ws.CloseStatusDescription}");
        return 0;
    }

    public async ValueTask DisposeAsync()
    {
        try { await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", CancellationToken.None); }
        catch (WebSocketException) { }
        ws.Dispose();
    }
}
