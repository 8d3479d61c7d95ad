using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Ws2s.Host.Tests;

/// <summary>A test's WebSocket client: sends frames, and waits (with a timeout) for what the server says.</summary>
public sealed class WsClient : IAsyncDisposable
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private readonly ClientWebSocket _socket;

    private WsClient(ClientWebSocket socket) => _socket = socket;

    public WebSocket Socket => _socket;

    /// <summary>Opens a session as a page on http://localhost would (an allowed origin by default).</summary>
    public static async Task<WsClient> ConnectAsync(Uri url, string? origin = "http://localhost:8080", params string[] subProtocols)
    {
        var socket = new ClientWebSocket();
        if (origin is not null) socket.Options.SetRequestHeader("Origin", origin);
        foreach (var p in subProtocols) socket.Options.AddSubProtocol(p);
        using var timeout = new CancellationTokenSource(Patience);
        await socket.ConnectAsync(url, timeout.Token);
        return new WsClient(socket);
    }

    /// <summary>A client over a WebSocket the caller connected (with its own headers).</summary>
    public static WsClient Wrap(ClientWebSocket socket) => new(socket);

    public Task SendTextAsync(string text) =>
        _socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);

    public Task SendAsync(object request) => SendTextAsync(JsonSerializer.Serialize(request));

    public Task SendBinaryAsync(ReadOnlyMemory<byte> bytes) =>
        _socket.SendAsync(bytes, WebSocketMessageType.Binary, true, CancellationToken.None).AsTask();

    /// <summary>The next whole message, or a Close with its status; fails the test after <see cref="Patience"/>.</summary>
    public async Task<Message> ReceiveAsync()
    {
        using var timeout = new CancellationTokenSource(Patience);
        var buffer = new MemoryStream();
        var chunk = new byte[64 * 1024];
        while (true)
        {
            WebSocketReceiveResult result;
            try
            {
                result = await _socket.ReceiveAsync(chunk, timeout.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"no message from the server within {Patience.TotalSeconds} s");
            }
            if (result.MessageType == WebSocketMessageType.Close)
                return new Message(WebSocketMessageType.Close, [], (int?)result.CloseStatus, result.CloseStatusDescription);
            buffer.Write(chunk, 0, result.Count);
            if (result.EndOfMessage) return new Message(result.MessageType, buffer.ToArray(), null, null);
        }
    }

    /// <summary>The next text message as JSON.</summary>
    public async Task<JsonObject> ReceiveJsonAsync()
    {
        var message = await ReceiveAsync();
        Assert.True(message.Type == WebSocketMessageType.Text, $"expected a text message, got {message}");
        return JsonNode.Parse(message.Text)!.AsObject();
    }

    /// <summary>Waits for the next answer or event other than recv data, collecting recv data bytes meanwhile.</summary>
    public async Task<JsonObject> ReceiveSkippingDataAsync(Stream received)
    {
        while (true)
        {
            var json = await ReceiveJsonAsync();
            if ((int)json["code"]! != -1) return json;
            received.Write(Convert.FromBase64String((string)json["data"]!));
        }
    }

    /// <summary>
    /// Expects an answer while the peer may already be echoing: recv data that comes first (the
    /// protocol lets events overtake answers) goes into <paramref name="received"/>.
    /// </summary>
    public async Task ExpectAnswerAsync(string json, Stream received)
    {
        var expected = JsonNode.Parse(json)!.AsObject();
        var actual = await ReceiveSkippingDataAsync(received);
        Assert.True(JsonNode.DeepEquals(expected, actual), $"expected {expected.ToJsonString()}, got {actual.ToJsonString()}");
    }

    /// <summary>Reads recv data into <paramref name="received"/> until it holds <paramref name="length"/> bytes.</summary>
    public async Task ReadDataAsync(Stream received, long length)
    {
        while (received.Length < length)
        {
            var json = await ReceiveJsonAsync();
            Assert.True((int)json["code"]! == -1, $"expected recv data, got {json.ToJsonString()}");
            received.Write(Convert.FromBase64String((string)json["data"]!));
        }
    }

    /// <summary>Connects to the echo peer on 127.0.0.1:<paramref name="port"/>, sends <paramref name="text"/> and checks it comes back.</summary>
    public async Task EchoThroughAsync(int port, string text)
    {
        await SendAsync(new { command = "connect", host = "127.0.0.1", port });
        await ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
        await SendAsync(new { command = "send", data = text });
        var echoed = new MemoryStream();
        await ExpectAnswerAsync("""{"success":true,"code":0,"message":"send done"}""", echoed);
        await ReadDataAsync(echoed, Encoding.UTF8.GetByteCount(text));
        Assert.Equal(text, Encoding.UTF8.GetString(echoed.ToArray()));
    }

    /// <summary>The next message is the server's close frame, with this status and reason.</summary>
    public async Task ExpectCloseAsync(int status, string reason)
    {
        var close = await ReceiveAsync();
        Assert.Equal(WebSocketMessageType.Close, close.Type);
        Assert.Equal(status, close.CloseStatus);
        Assert.Equal(reason, close.CloseReason);
    }

    public async Task ExpectAsync(string json)
    {
        var expected = JsonNode.Parse(json)!.AsObject();
        var actual = await ReceiveJsonAsync();
        Assert.True(JsonNode.DeepEquals(expected, actual), $"expected {expected.ToJsonString()}, got {actual.ToJsonString()}");
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_socket.State == WebSocketState.Open)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await _socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "", timeout.Token);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException) { }
        _socket.Dispose();
    }
}

public sealed record Message(WebSocketMessageType Type, byte[] Bytes, int? CloseStatus, string? CloseReason)
{
    public string Text => Encoding.UTF8.GetString(Bytes);

    public override string ToString() => Type switch
    {
        WebSocketMessageType.Close => $"close {CloseStatus} {CloseReason}",
        WebSocketMessageType.Text => Text,
        _ => $"{Bytes.Length} binary bytes",
    };
}
