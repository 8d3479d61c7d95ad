using System.Net.WebSockets;
using System.Threading.Channels;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Sessions;

/// <summary>
/// One client WebSocket and the request that owns it: the request waits for <see cref="Released"/>, which the last
/// session to speak through it completes (it may move to another session: a resume). <paramref name="name"/>: the
/// client as log lines name it (address, port, path, a signed token's subject; never a token). <paramref name="abortConnection"/>:
/// ends the client's connection itself (Kestrel's), which a WebSocket's own abort leaves open under a send that waits for room.
/// </summary>
internal sealed class ClientSocket(WebSocket socket, ClientTcp tcp, string name, Action? abortConnection = null)
{
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public WebSocket Socket => socket;

    /// <summary>The client's TCP connection, for the kernel's word on whether it is still there.</summary>
    public ClientTcp Tcp => tcp;

    public string Name => name;

    /// <summary>Completes once no session speaks through this WebSocket any more: its request may end.</summary>
    public Task Released => _released.Task;

    public void Release() => _released.TrySetResult();

    /// <summary>Ends the WebSocket and its connection at once: a send or receive waiting on it fails.</summary>
    public void Abort()
    {
        socket.Abort();
        abortConnection?.Invoke();
    }
}

/// <summary>
/// A <see cref="ClientSocket"/> attached to a session: its reader (posting to the session's inputs, each message when
/// granted) and how the session lets it go again — by its close handshake, aborted (lost, or taken over by a resume),
/// or handed to another session whole.
/// </summary>
internal sealed class AttachedClient
{
    /// <summary>How long a closing session waits for the client's close frame.</summary>
    private static readonly TimeSpan CloseHandshakeTimeout = TimeSpan.FromSeconds(5);

    private readonly CancellationTokenSource _ended = new();
    private readonly Task _reading;
    private readonly TimeProvider _time;
    private readonly ILogger _log;

    public AttachedClient(ClientSocket client, RunnerServices services, ChannelWriter<Input> inputs, Action turnEnded)
    {
        Client = client;
        _time = services.Time;
        _log = services.Log;
        Reader = new ClientReader(client.Socket, services.MaxMessageBytes, inputs, services.Log, turnEnded);
        _reading = Reader.RunAsync(_ended.Token);
    }

    public ClientSocket Client { get; }

    public ClientReader Reader { get; }

    /// <summary>Lets the client go without a word (lost, or taken over): the WebSocket aborted, its request released.</summary>
    public async Task AbortAsync()
    {
        Reader.Detach();
        Client.Abort();
        _ended.Cancel();
        await _reading;
        Client.Release();
    }

    /// <summary>
    /// Stops reading, for the WebSocket to go on in another session. Only for a session whose core grants its reader
    /// nothing more (a resume asked, <c>Busy(Resuming)</c>): the reader has taken its last grant and is at, or on its way to,
    /// its wait for the next, where it touches no frame; let go, it ends there. Nothing to wait for (a wait would cost the
    /// resume a thread hop: the grant's wait resumes on the pool).
    /// </summary>
    public ClientSocket HandOn()
    {
        Reader.Detach();
        return Client;
    }

    /// <summary>
    /// The session's end: the close frame with <paramref name="status"/> and <paramref name="reason"/>, then the client's, for at
    /// most 5 s (cancelling a pending receive aborts the WebSocket: it could cut off our close frame); then the request is released.
    /// </summary>
    public async Task CloseAsync(int status, string reason)
    {
        Reader.Drain();
        try
        {
            if (Client.Socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                using var timeout = new CancellationTokenSource(CloseHandshakeTimeout, _time);
                await Client.Socket.CloseOutputAsync((WebSocketCloseStatus)status, reason, timeout.Token);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
            _log.LogDebug("client went away before the close handshake");
        }
        try
        {
            await _reading.WaitAsync(CloseHandshakeTimeout, _time);
        }
        catch (TimeoutException)
        {
            _ended.Cancel();
            await _reading;
        }
        Client.Release();
    }
}
