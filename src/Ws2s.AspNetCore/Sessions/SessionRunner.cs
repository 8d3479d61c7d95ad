using System.Buffers;
using System.Net.WebSockets;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Diagnostics;
using System.Threading.Channels;
using Ws2s.AspNetCore.Ssh;
using Ws2s.AspNetCore.Telemetry;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Sessions;

/// <summary>
/// Drives one session: the single consumer of its inputs (client frames, socket events, timers),
/// it steps the pure core and carries out the effects in order. The client reader only reads the
/// next frame when the core can take it, so a client that outruns its peer is held back by
/// WebSocket flow control, and a peer that outruns its client by TCP flow control.
/// </summary>
internal sealed class SessionRunner
{
    /// <summary>Socket events that may wait for the session loop; a full channel stops the TCP readers.</summary>
    private const int InputCapacity = 8;

    private readonly WebSocket _client;
    private readonly int _maxMessageBytes;
    private readonly ILogger _log;
    private readonly Channel<Input> _inputs = Channel.CreateBounded<Input>(
        new BoundedChannelOptions(InputCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    private readonly SemaphoreSlim _mayReadClient = new(1, 1);
    private readonly Dictionary<long, Connection> _connections = [];
    private readonly ArrayBufferWriter<byte> _responseBuffer = new(256);
    private readonly Utf8JsonWriter _responseWriter;
    private readonly IMachine _machine;
    private (int Status, string Reason)? _closeWith;
    private readonly Ws2sMetrics _metrics;
    /// <summary>Who the client is, for the log (address and path; never the query, which may hold a token).</summary>
    private readonly string _clientDescription;
    private long _bytesToPeer, _bytesToClient;

    /// <summary>The connect in flight: its generation and when its timer started (Stopwatch ticks).</summary>
    private (long Generation, long Since) _connectStarted = (-1, 0);
    private System.Net.IPEndPoint? _lastTarget;

    private readonly SshSessions _sshSessions;
    private readonly System.Net.IPAddress _clientAddress;
    private readonly SessionClock _clock;

    private readonly TimeSpan _messageTimeout;
    private readonly QueueBudget _budget;
    private readonly ClientTcp _clientTcp;

    /// <summary>This session's share of <see cref="_budget"/>: the bytes its core holds queued.</summary>
    private int _queued;

    public SessionRunner(WebSocket client, IMachine machine, int maxMessageBytes, TimeSpan messageTimeout, ILogger log, Ws2sMetrics metrics,
        string clientDescription, SshSessions sshSessions, System.Net.IPAddress clientAddress, SessionClock clock,
        QueueBudget budget, ClientTcp clientTcp)
    {
        _budget = budget;
        _clientTcp = clientTcp;
        _messageTimeout = messageTimeout;
        _sshSessions = sshSessions;
        _clientAddress = clientAddress;
        _clock = clock;
        _client = client;
        _machine = machine;
        _maxMessageBytes = maxMessageBytes;
        _log = log;
        _metrics = metrics;
        _clientDescription = clientDescription;
        _responseWriter = new Utf8JsonWriter(_responseBuffer, Codec.writerOptions);
    }

    public async Task RunAsync(CancellationToken stopping)
    {
        var started = Stopwatch.GetTimestamp();
        _metrics.Sessions.Add(1);
        _metrics.SessionsActive.Add(1);
        _log.LogDebug("session from {Client} started", _clientDescription);
        try
        {
            await RunSessionAsync(stopping);
        }
        finally
        {
            _metrics.SessionsActive.Add(-1);
            var (status, reason) = _closeWith ?? (1000, "");
            _log.LogInformation(
                "session from {Client} ended after {Seconds:F1} s: {BytesToPeer} bytes to peers, {BytesToClient} bytes to the client, last target {Target}, close {Status} {Reason}",
                _clientDescription, Stopwatch.GetElapsedTime(started).TotalSeconds, _bytesToPeer, _bytesToClient,
                _lastTarget?.ToString() ?? "none", status, reason);
        }
    }

    private async Task RunSessionAsync(CancellationToken stopping)
    {
        // Not linked to `stopping`: cancelling a pending receive aborts the WebSocket, and a stopping
        // server still owes its clients a close frame (1001).
        using var ended = new CancellationTokenSource();
        var reader = ReadClientAsync(ended.Token);
        using var ticks = _clock.Register(_inputs.Writer);
        try
        {
            foreach (var effect in _machine.Start()) await ExecuteAsync(effect, ended.Token);
            while (!_machine.IsEnded)
            {
                var input = await _inputs.Reader.ReadAsync(stopping);
                if (input.IsTick && _clientTcp.HasEnded())
                {
                    // Gone while the reader waits for room (or between frames): the kernel knows before any frame says so.
                    _log.LogDebug("client {Client} reset or closed its connection", _clientDescription);
                    input = Input.ClientGone;
                }
                await StepAsync(input, ended.Token);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            _closeWith ??= (1001, "server shutting down");
            await StepAsync(Input.ClientGone, CancellationToken.None);
        }
        catch (WebSocketException)
        {
            // The client went away mid-send: end the session quietly.
            await StepAsync(Input.ClientGone, CancellationToken.None);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A bug of ours: logged once; the client hears code 1 and close 1011, and the close handshake still runs.
            _log.LogError(e, "session from {Client} failed unexpectedly", _clientDescription);
            try
            {
                await StepAsync(Input.NewHostFault("the server hit an internal error (it is in the server's log)"), CancellationToken.None);
            }
            catch (Exception again) when (again is not OperationCanceledException)
            {
                _closeWith = (1011, "unexpected server error");
            }
        }
        finally
        {
            _queued = _budget.Update(_queued, 0);
            ticks.Dispose();
            _inputs.Writer.TryComplete();
            foreach (var connection in _connections.Values) connection.Dispose();
            _connections.Clear();
        }
        // Close first, then let the reader take the client's close frame: cancelling a pending receive
        // aborts the WebSocket, which could cut off our close frame.
        _draining = true;
        if (_mayReadClient.CurrentCount == 0) _mayReadClient.Release();
        await CloseClientAsync();
        try
        {
            await reader.WaitAsync(CloseHandshakeTimeout);
        }
        catch (TimeoutException)
        {
            ended.Cancel();
            await reader;
        }
    }

    /// <summary>A close reason fits in 123 UTF-8 bytes (RFC 6455 §5.5); longer ones are cut at a character boundary.</summary>
    internal static string CloseReason(string reason)
    {
        if (System.Text.Encoding.UTF8.GetByteCount(reason) <= 123) return reason;
        var cut = reason[..Math.Min(reason.Length, 122)];
        while (System.Text.Encoding.UTF8.GetByteCount(cut + "…") > 123) cut = cut[..^1];
        return cut + "…";
    }

    /// <summary>How long a closing session waits for the client's close frame.</summary>
    private static readonly TimeSpan CloseHandshakeTimeout = TimeSpan.FromSeconds(5);

    /// <summary>The session is over: the reader only waits for the client's close frame now.</summary>
    private volatile bool _draining;

    private async Task StepAsync(Input input, CancellationToken cancel)
    {
        var effects = _machine.Step(input);
        try
        {
            foreach (var effect in effects) await ExecuteAsync(effect, cancel);
        }
        finally
        {
            // Pooled buffers the core is done with: peer reads and client text frames.
            var lent = input switch
            {
                Input.Received received => received.Bytes,
                Input.ClientText text => text.Frame,
                _ => ReadOnlyMemory<byte>.Empty,
            };
            if (!lent.IsEmpty && MemoryMarshal.TryGetArray(lent, out var segment))
                ArrayPool<byte>.Shared.Return(segment.Array!);
        }
        _queued = _budget.Update(_queued, _machine.QueuedBytes);
        // A client frame used the reader's credit; any step (a tick too) may make room for the next frame.
        ReleaseClientIfAccepted(owed: input.IsClientText || input.IsClientBinary);
    }

    private bool _clientCreditOwed;

    /// <summary>
    /// Lets the client reader take one more frame once the core accepts requests again, and, if this
    /// session already holds queued bytes, once the server-wide budget has room.
    /// </summary>
    private void ReleaseClientIfAccepted(bool owed)
    {
        _clientCreditOwed |= owed;
        if (_clientCreditOwed && _machine.AcceptsFrame && (_queued == 0 || _budget.HasRoom))
        {
            _clientCreditOwed = false;
            _mayReadClient.Release();
        }
    }

    private async ValueTask ExecuteAsync(Effect effect, CancellationToken cancel)
    {
        switch (effect)
        {
            case Effect.Reply reply:
                if (reply.Response is Response.RecvData data) CountToClient(data.Item.Length);
                _responseBuffer.ResetWrittenCount();
                _responseWriter.Reset();
                Codec.writeResponse(_responseWriter, reply.Response);
                await _client.SendAsync(_responseBuffer.WrittenMemory, WebSocketMessageType.Text, true, cancel);
                break;
            case Effect.ReplyBinary binary:
                CountToClient(binary.Bytes.Length);
                await _client.SendAsync(binary.Bytes, WebSocketMessageType.Binary, true, cancel);
                break;
            case Effect.Resolve resolve:
                ConnectionOf(resolve.Generation).StartResolve(resolve.Name);
                break;
            case Effect.Dial dial:
                _lastTarget = dial.Endpoint;
                ConnectionOf(dial.Generation).StartDial(dial.Endpoint);
                break;
            case Effect.OpenTunnel tunnel:
                _lastTarget = tunnel.Server;
                ConnectionOf(tunnel.Generation).StartTunnel(tunnel.Server, tunnel.Login, tunnel.Host, tunnel.Port, _sshSessions, _clientAddress);
                break;
            case Effect.StartAttemptTimer attemptTimer:
                ConnectionOf(attemptTimer.Generation).StartAttemptTimer();
                break;
            case Effect.StartConnectTimer timer:
                _connectStarted = (timer.Generation, Stopwatch.GetTimestamp());
                ConnectionOf(timer.Generation).StartTimer(timer.Seconds);
                break;
            case Effect.Write write:
                _bytesToPeer += write.Bytes.Length;
                _metrics.Bytes.Add(write.Bytes.Length, new KeyValuePair<string, object?>("direction", "to_peer"));
                ConnectionOf(write.Generation).StartWrite(write.Bytes);
                break;
            case Effect.CloseConnection close:
                if (_connections.Remove(close.Generation, out var connection)) connection.Dispose();
                break;
            case Effect.ShutdownConnection shutdown:
                if (_connections.TryGetValue(shutdown.Generation, out var halfClosed)) halfClosed.ShutdownSend();
                break;
            case Effect.CloseClient closeClient:
                _closeWith = (closeClient.Status, closeClient.Reason);
                break;
            case Effect.Observe observe:
                Count(observe.Item);
                break;
            default:
                throw new InvalidOperationException($"the host does not know the effect {effect}");
        }
    }

    private void CountToClient(int bytes)
    {
        _bytesToClient += bytes;
        _metrics.Bytes.Add(bytes, new KeyValuePair<string, object?>("direction", "to_client"));
    }

    /// <summary>Counts what the core reports: how a connect ended and, if it was started, how long it took.</summary>
    private void Count(Observation observation)
    {
        // One case so far (ConnectAnswered); F# gives a single-case union no subclasses to switch on.
        var code = observation.Code;
        _metrics.Connects.Add(1, new KeyValuePair<string, object?>("outcome", code.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        if (code == 4) _metrics.PolicyRefusals.Add(1);
        if (observation.Started?.Value is { } generation && generation == _connectStarted.Generation)
            _metrics.ConnectDuration.Record(Stopwatch.GetElapsedTime(_connectStarted.Since).TotalSeconds);
    }

    private Connection ConnectionOf(long generation)
    {
        if (!_connections.TryGetValue(generation, out var connection))
        {
            connection = new Connection(generation, _inputs.Writer, _log);
            _connections.Add(generation, connection);
        }
        return connection;
    }

    /// <summary>
    /// Reads whole client messages, one at a time and only when the session has room for them;
    /// a message over the size limit ends the session with 1009. Once the session is over it keeps
    /// reading (and discarding) until the client's close frame: closing TCP with unread input would
    /// make the kernel reset the connection, and the client could lose our close frame.
    /// </summary>
    private async Task ReadClientAsync(CancellationToken cancel)
    {
        try
        {
            while (true)
            {
                if (!_draining) await _mayReadClient.WaitAsync(cancel);
                // Wait for the next frame without a buffer (a zero-byte read), so an idle session pins none.
                if ((await _client.ReceiveAsync(Memory<byte>.Empty, cancel)).MessageType == WebSocketMessageType.Close)
                {
                    await PostAsync(Input.ClientGone, cancel);
                    return;
                }
                _frame = ArrayPool<byte>.Shared.Rent(16 * 1024);
                // A message begun must be finished in time: one that stops half-way is closed (1008), not kept.
                WebSocketMessageType type;
                int length;
                using (_clock.Time.CreateTimer(_ => _ = PostAsync(Input.NewClientMessageStalled((int)_messageTimeout.TotalSeconds), CancellationToken.None),
                           null, _messageTimeout, Timeout.InfiniteTimeSpan))
                    (type, length) = await ReceiveMessageAsync(cancel);
                if (type == WebSocketMessageType.Close)
                {
                    ReturnFrame();
                    await PostAsync(Input.ClientGone, cancel);
                    return;
                }
                if (_draining)
                {
                    ReturnFrame();
                    continue;
                }
                if (length > _maxMessageBytes)
                {
                    ReturnFrame();
                    _draining = true;
                    await PostAsync(Input.NewClientMessageTooLarge(_maxMessageBytes), cancel);
                    continue;
                }
                if (type == WebSocketMessageType.Text)
                {
                    // The core parses text frames within the step and keeps nothing of them: the loop returns the buffer.
                    var frame = _frame;
                    _frame = [];
                    await PostAsync(Input.NewClientText(new ReadOnlyMemory<byte>(frame, 0, length)), cancel);
                }
                else
                {
                    // Binary frames may wait in the core's queue: give it its own copy.
                    var copy = _frame.AsSpan(0, length).ToArray();
                    ReturnFrame();
                    await PostAsync(Input.NewClientBinary(copy), cancel);
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
            _log.LogDebug("client stream ended: {Reason} (state {State})", e.Message, _client.State);
            await PostAsync(Input.ClientGone, CancellationToken.None);
        }
        finally
        {
            ReturnFrame();
        }
    }

    /// <summary>The client message being received (pooled while a message arrives; lent to the core for text frames).</summary>
    private byte[] _frame = [];

    private void ReturnFrame()
    {
        if (_frame.Length > 0) ArrayPool<byte>.Shared.Return(_frame);
        _frame = [];
    }

    /// <summary>
    /// Receives one whole message into <see cref="_frame"/> (growing it from the pool up to the
    /// size limit). As soon as more than the limit has arrived it stops and reports the length so far.
    /// </summary>
    private async ValueTask<(WebSocketMessageType Type, int Length)> ReceiveMessageAsync(CancellationToken cancel)
    {
        var length = 0;
        while (true)
        {
            if (length == _frame.Length && length <= _maxMessageBytes)
            {
                var larger = ArrayPool<byte>.Shared.Rent(Math.Min(length * 2, _maxMessageBytes + 1));
                _frame.AsSpan(0, length).CopyTo(larger);
                ArrayPool<byte>.Shared.Return(_frame);
                _frame = larger;
            }
            var into = _frame.AsMemory(length);
            var result = await _client.ReceiveAsync(into, cancel);
            length += result.Count;
            if (result.MessageType == WebSocketMessageType.Close) return (WebSocketMessageType.Close, 0);
            if (result.EndOfMessage || length > _maxMessageBytes) return (result.MessageType, length);
        }
    }

    private async ValueTask PostAsync(Input input, CancellationToken cancel)
    {
        try
        {
            await _inputs.Writer.WriteAsync(input, cancel);
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
            // The session is over already.
        }
    }

    private async Task CloseClientAsync()
    {
        try
        {
            var (status, reason) = _closeWith ?? (1000, "");
            reason = CloseReason(reason);
            if (_client.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await _client.CloseOutputAsync((WebSocketCloseStatus)status, reason, timeout.Token);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
            _log.LogDebug("client went away before the close handshake");
        }
    }
}
