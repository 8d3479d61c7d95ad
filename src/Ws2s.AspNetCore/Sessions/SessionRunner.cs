using System.Buffers;
using System.Net.WebSockets;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using Ws2s.AspNetCore.Telemetry;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Sessions;

/// <summary>
/// Runs one session's loop: the single consumer of its inputs (client messages, socket events, ticks),
/// it steps the core and has the effects carried out in order, then closes the client. The reader is
/// granted the next message only when the core can take it (and, if this session already holds queued
/// bytes, when the server-wide budget has room), so a client that outruns its peer is held back by
/// WebSocket flow control, and a peer that outruns its client by TCP flow control.
/// </summary>
internal sealed class SessionRunner
{
    /// <summary>Socket events that may wait for the session loop; a full channel stops the TCP readers.</summary>
    private const int InputCapacity = 8;

    /// <summary>How long a closing session waits for the client's close frame.</summary>
    private static readonly TimeSpan CloseHandshakeTimeout = TimeSpan.FromSeconds(5);

    private readonly Channel<Input> _inputs = Channel.CreateBounded<Input>(
        new BoundedChannelOptions(InputCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    private readonly WebSocket _client;
    private readonly IMachine _machine;
    private readonly Ticker _ticker;
    private readonly QueueBudget _budget;
    private readonly ClientTcp _clientTcp;
    private readonly SessionObserver _observer;
    private readonly ILogger _log;
    private readonly ClientReader _reader;
    private readonly SessionEffects _effects;

    /// <summary>This session's share of <see cref="_budget"/>: the bytes its core holds queued.</summary>
    private int _queued;

    /// <summary>A client message used the reader's grant, and the next is not granted yet.</summary>
    private bool _grantOwed;

    private readonly RunnerServices _services;

    /// <summary>The server settings this session last took up (checked before every input, so a reload reaches open sessions at once).</summary>
    private Session.Settings? _serverSettings;

    /// <summary>When the token that admitted this session expires (then new connects end), if it does.</summary>
    private DateTimeOffset? _connectsUntil;

    public SessionRunner(WebSocket client, IMachine machine, RunnerServices services, SessionObserver observer, System.Net.IPAddress clientAddress, ClientTcp clientTcp,
        DateTimeOffset? connectsUntil = null)
    {
        _connectsUntil = connectsUntil;
        _client = client;
        _machine = machine;
        _ticker = services.Ticker;
        _budget = services.Budget;
        _clientTcp = clientTcp;
        _observer = observer;
        _log = services.Log;
        _services = services;
        _serverSettings = services.ServerSettings;
        _reader = new ClientReader(client, services.MaxMessageBytes, services.MessageTimeout, services.Time, _inputs.Writer, services.Log);
        _effects = new SessionEffects(client, _inputs.Writer, services, clientAddress, observer, services.Log);
    }

    public async Task RunAsync(CancellationToken stopping)
    {
        _observer.Started();
        try
        {
            await RunSessionAsync(stopping);
        }
        finally
        {
            var (status, reason) = _effects.CloseWith ?? (1000, "");
            _observer.Ended(status, reason);
        }
    }

    private async Task RunSessionAsync(CancellationToken stopping)
    {
        // Not linked to `stopping`: cancelling a pending receive aborts the WebSocket, and a stopping
        // server still owes its clients a close frame (1001).
        using var ended = new CancellationTokenSource();
        var reader = _reader.RunAsync(ended.Token);
        using (_ticker.Register(_inputs.Writer))
        using (_effects)
        {
            try
            {
                foreach (var effect in _machine.Start()) await _effects.ExecuteAsync(effect, ended.Token);
                while (!_machine.IsEnded)
                {
                    var input = await _inputs.Reader.ReadAsync(stopping);
                    // Before every input, so a connect that arrives after the expiry is judged by it, tick or no tick.
                    if (_connectsUntil is { } until && _ticker.Time.GetUtcNow() >= until)
                    {
                        _connectsUntil = null;
                        _machine.EndConnects(until);
                    }
                    // Before every input too (a volatile read and a reference compare while nothing changed): a connect that
                    // arrives after a reload returned is judged by the new rules, not by the old ones until the next tick.
                    if (_services.ServerSettings is { } latest && !ReferenceEquals(latest, _serverSettings))
                    {
                        _serverSettings = latest;
                        _machine.Reconfigure(latest);
                    }
                    if (input.IsTick && _clientTcp.HasEnded())
                    {
                        // Gone while the reader waits for a grant (or between messages): the kernel knows before any frame says so.
                        _log.LogDebug("client {Client} reset or closed its connection", _observer.Client);
                        input = Input.ClientGone;
                    }
                    await StepAsync(input, ended.Token);
                }
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                _effects.CloseUnlessDecided(1001, "server shutting down");
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
                _log.LogError(e, "session from {Client} failed unexpectedly", _observer.Client);
                try
                {
                    await StepAsync(Input.NewHostFault("the server hit an internal error (it is in the server's log)"), CancellationToken.None);
                }
                catch (Exception again) when (again is not OperationCanceledException)
                {
                    _effects.CloseUnlessDecided(1011, "unexpected server error");
                }
            }
            finally
            {
                _queued = _budget.Update(_queued, 0);
                _inputs.Writer.TryComplete();
            }
        }
        // Close first, then let the reader take the client's close frame: cancelling a pending receive
        // aborts the WebSocket, which could cut off our close frame.
        _reader.Drain();
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

    private async Task StepAsync(Input input, CancellationToken cancel)
    {
        var effects = _machine.Step(input);
        try
        {
            foreach (var effect in effects) await _effects.ExecuteAsync(effect, cancel);
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
        // A client message used the reader's grant; any step (a tick too) may make room for the next one.
        _grantOwed |= input.IsClientText || input.IsClientBinary;
        if (_grantOwed && _machine.AcceptsFrame && (_queued == 0 || _budget.HasRoom))
        {
            _grantOwed = false;
            _reader.Grant();
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

    private async Task CloseClientAsync()
    {
        try
        {
            var (status, reason) = _effects.CloseWith ?? (1000, "");
            if (_client.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                using var timeout = new CancellationTokenSource(CloseHandshakeTimeout);
                await _client.CloseOutputAsync((WebSocketCloseStatus)status, CloseReason(reason), timeout.Token);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
            _log.LogDebug("client went away before the close handshake");
        }
    }
}
