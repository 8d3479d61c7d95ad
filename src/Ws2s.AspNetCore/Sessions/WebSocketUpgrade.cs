using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace Ws2s.AspNetCore.Sessions;

/// <summary>
/// The WebSocket handshake done by hand (RFC 6455 §4.2.2) so that the session keeps the raw stream:
/// when the WebSocket aborts (say, on invalid UTF-8 in a text frame, after sending close 1007) the
/// stream is drained before the connection closes. Closing TCP with unread input makes the kernel
/// send a reset, and the client would lose the close frame that says what went wrong.
/// </summary>
internal sealed class WebSocketUpgrade : IAsyncDisposable
{
    private static readonly TimeSpan LingerTime = TimeSpan.FromSeconds(2);

    private readonly Stream _stream;
    private readonly TimeProvider _time;

    private WebSocketUpgrade(Stream stream, WebSocket socket, TimeProvider time)
    {
        _stream = stream;
        Socket = socket;
        _time = time;
    }

    public WebSocket Socket { get; }

    /// <summary>
    /// Why a request that asks to upgrade is not a WebSocket handshake this server accepts (RFC 6455
    /// §4.2.1: HTTP/1.1, method GET, version 13 exactly), or null when it is. Answered with 426 and
    /// <c>Sec-WebSocket-Version: 13</c>.
    /// </summary>
    public static string? Problem(HttpContext context)
    {
        var request = context.Request;
        if (!string.Equals(request.Protocol, "HTTP/1.1", StringComparison.Ordinal)) return "a WebSocket handshake needs HTTP/1.1";
        if (!string.Equals(request.Method, "GET", StringComparison.Ordinal)) return "a WebSocket handshake is a GET request";
        if (request.Headers.SecWebSocketVersion is not ["13"]) return "this server speaks WebSocket version 13 only";
        if (!ValidKey(request.Headers.SecWebSocketKey.ToString())) return "Sec-WebSocket-Key must be 16 bytes in base64";
        if (!request.Headers.Connection.Any(v => v?.Contains("upgrade", StringComparison.OrdinalIgnoreCase) == true))
            return "a WebSocket handshake says Connection: Upgrade";
        if (context.Features.Get<IHttpUpgradeFeature>() is not { IsUpgradableRequest: true }) return "this connection cannot be upgraded";
        return null;
    }

    private static bool ValidKey(string key)
    {
        Span<byte> bytes = stackalloc byte[24];
        return key.Length == 24 && Convert.TryFromBase64String(key, bytes, out var length) && length == 16;
    }

    /// <summary>Does the request ask for a WebSocket upgrade at all (an <c>Upgrade: websocket</c> header)?</summary>
    public static bool IsAttempt(HttpRequest request) =>
        request.Headers.Upgrade.Any(v => v?.Contains("websocket", StringComparison.OrdinalIgnoreCase) == true);

    public static async Task<WebSocketUpgrade> AcceptAsync(HttpContext context, string? subProtocol, TimeSpan keepAlive)
    {
        var key = context.Request.Headers.SecWebSocketKey.ToString();
        var accept = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
        context.Response.Headers.Connection = "Upgrade";
        context.Response.Headers.Upgrade = "websocket";
        context.Response.Headers.SecWebSocketAccept = accept;
        if (subProtocol is not null) context.Response.Headers.SecWebSocketProtocol = subProtocol;
        var stream = await context.Features.Get<IHttpUpgradeFeature>()!.UpgradeAsync();
        // A relay from here on: its reads complete on the socket's event thread, without a hop to the thread pool.
        Connectors.InlineCompletions.Prefer(context.Features.Get<IConnectionSocketFeature>()?.Socket, inline: true);
        var socket = WebSocket.CreateFromStream(new KeepOpenStream(stream), new WebSocketCreationOptions
        {
            IsServer = true,
            SubProtocol = subProtocol,
            KeepAliveInterval = keepAlive,
        });
        return new WebSocketUpgrade(stream, socket, context.RequestServices.GetService<TimeProvider>() ?? TimeProvider.System);
    }

    /// <summary>
    /// After a clean close handshake the connection just closes (the server closes TCP first, RFC 6455 §7.1.1).
    /// Otherwise it reads and discards what the client still sends, for a short while, then lets go.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        var clean = Socket.State == WebSocketState.Closed;
        Socket.Dispose();
        if (clean)
        {
            await _stream.DisposeAsync();
            return;
        }
        using var linger = new CancellationTokenSource(LingerTime, _time);
        var scratch = new byte[4096];
        try
        {
            while (await _stream.ReadAsync(scratch, linger.Token) > 0) { }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException) { }
        await _stream.DisposeAsync();
    }

    /// <summary>Passes everything through but disposal, which belongs to <see cref="WebSocketUpgrade"/>.</summary>
    private sealed class KeepOpenStream(Stream inner) : Stream
    {
        public override bool CanRead => inner.CanRead;
        public override bool CanSeek => false;
        public override bool CanWrite => inner.CanWrite;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.ReadAsync(buffer, offset, count, cancellationToken);
        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => inner.WriteAsync(buffer, cancellationToken);
        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.WriteAsync(buffer, offset, count, cancellationToken);
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
