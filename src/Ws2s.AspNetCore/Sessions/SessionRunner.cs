using System.Net.WebSockets;
using System.Threading.Channels;
using Ws2s.AspNetCore.Telemetry;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Sessions;

/// <summary>
/// Runs one session's loop: the single consumer of its inputs (client messages, socket events, wake-ups),
/// it steps the core with each and the time it happened, has the effects carried out in order, and keeps
/// one timer armed for the core's next deadline; then it closes the client as the core decided. The reader is
/// granted the next message only when the core can take it (and, if this session already holds queued
/// bytes, when the server-wide budget has room), so a client that outruns its peer is held back by
/// WebSocket flow control, and a peer that outruns its client by TCP flow control.
/// </summary>
internal sealed class SessionRunner
{
    /// <summary>Socket events that may wait for the session loop; a full channel stops the TCP readers.</summary>
    private const int InputCapacity = 8;

    private readonly Channel<Input> _inputs = Channel.CreateBounded<Input>(
        new BoundedChannelOptions(InputCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
            // The loop goes on on the thread that posts (a socket's completion, often inline on its event thread), not on a
            // thread-pool thread woken for it: with InlineCompletions, a round trip crosses no thread at all.
            AllowSynchronousContinuations = true,
        });
    private readonly ISessionProtocol _protocol;
    private readonly TimeProvider _time;
    /// <summary>The session's time for the core, and its one timer (armed for the core's next deadline).</summary>
    private readonly SessionTimer _timer;
    private readonly QueueBudget _budget;
    private readonly SessionObserver _observer;
    private readonly ILogger _log;
    private readonly SessionEffects _effects;
    private readonly RunnerServices _services;
    private readonly SessionClient _who;

    /// <summary>The session's reads on their way to the loop (peer reads' tickets, the buffers inputs lend), and its peer writes, sent when its turn ends.</summary>
    private readonly SessionReads _reads = new();
    private readonly WriteBehind _writes;

    /// <summary>The client the session speaks through now; null while it has none (suspended, or handing it to a session it resumes).</summary>
    private AttachedClient? _client;

    /// <summary>How the session's clients come and go: resumes, and its resume token.</summary>
    private readonly SessionResumes _resumes;

    /// <summary>This session's share of <see cref="_budget"/>: the bytes its core holds queued.</summary>
    private int _queued;

    /// <summary>This session's share of <see cref="RunnerServices.Kept"/>: the peer bytes it keeps for a resume.</summary>
    private int _kept;

    /// <summary>Its peers are not read because all resumable connections keep as much as they may together (checked again shortly).</summary>
    private bool _heldByKept;

    /// <summary>A client message used the reader's grant, and the next is not granted yet.</summary>
    private bool _grantOwed;

    /// <summary>The server settings this session last took up (checked before every input, so a reload reaches open sessions at once).</summary>
    private Session.Settings? _serverSettings;

    /// <summary>When the token that admitted this session expires (then new connects end), if it does.</summary>
    private DateTimeOffset? _connectsUntil;

    public SessionRunner(ClientSocket client, ISessionProtocol protocol, RunnerServices services, SessionObserver observer, SessionClient who)
    {
        _connectsUntil = who.TokenExpires;
        _who = who;
        _protocol = protocol;
        _time = services.Time;
        _timer = new SessionTimer(_time, _inputs.Writer);
        _budget = services.Budget;
        _writes = new WriteBehind(_budget);
        _observer = observer;
        _log = services.Log;
        _services = services;
        _serverSettings = services.Settings?.Current;
        _resumes = new SessionResumes(this, services.Resumes, observer, who.Address);
        _client = Attach(client);
        _effects = new SessionEffects(_resumes, _inputs.Writer, services, who.Address, observer, services.Log, who.Unproven, _reads, _writes);
    }

    /// <summary>Who admitted this session, as a resume must match it.</summary>
    public ResumeIdentity Identity => _who.Identity;

    /// <summary>How this session's clients come and go (resumes offered to it arrive there).</summary>
    internal SessionResumes Resumes => _resumes;

    /// <summary>The session's client now (null: none).</summary>
    internal AttachedClient? Client => _client;

    /// <summary>Speaks through <paramref name="client"/> from now on: its reader takes the session's next message.</summary>
    internal AttachedClient Attach(ClientSocket client)
    {
        _grantOwed = false;
        return _client = new AttachedClient(client, _services, _inputs.Writer, _writes.TurnEnded);
    }

    /// <summary>Lets go of the client without a word (lost, or handed on): returns it, if there was one.</summary>
    internal AttachedClient? Detach()
    {
        var client = _client;
        _client = null;
        return client;
    }

    /// <summary>Hands the session an input from outside its loop; false once it has ended.</summary>
    internal async ValueTask<bool> PostAsync(Input input)
    {
        try
        {
            await _inputs.Writer.WriteAsync(input);
            return true;
        }
        catch (ChannelClosedException)
        {
            return false;
        }
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
            var (status, reason) = _effects.CloseWith ?? NoDecision;
            _observer.Ended(status, reason);
            _who.Lease?.Dispose();
        }
    }

    /// <summary>Every way a session ends has the core decide its close; missing one is a bug of ours, said as such.</summary>
    private static readonly (int, string) NoDecision = (1011, "unexpected server error");

    /// <summary>
    /// Arms the timer for the core's next deadline. While the reader is held back it cannot see the client go, so the
    /// session also looks each second.
    /// </summary>
    private void Arm(Instant now)
    {
        var due = _protocol.NextDeadline?.Milliseconds;
        if (_grantOwed && _client is not null) due = Math.Min(due ?? long.MaxValue, now.Milliseconds + HeldBackCheckMilliseconds);
        // Others' acks make room without a word to this session: it looks again.
        if (_heldByKept) due = Math.Min(due ?? long.MaxValue, now.Milliseconds + HeldByKeptCheckMilliseconds);
        _timer.Arm(now, due);
    }

    /// <summary>How often a session whose reader is held back asks the kernel whether its client is still there.</summary>
    private const long HeldBackCheckMilliseconds = 1000;

    /// <summary>How often a session held by the server-wide bound on kept bytes looks for room again.</summary>
    private const long HeldByKeptCheckMilliseconds = 250;

    private async Task RunSessionAsync(CancellationToken stopping)
    {
        // Not linked to `stopping`: a stopping server still owes its clients a close frame (1001).
        using var ended = new CancellationTokenSource();
        using (_timer)
        using (_services.Settings?.Watch(_inputs.Writer))
        using (_effects)
        {
            try
            {
                var start = _timer.Now();
                foreach (var effect in _protocol.Start(start)) await _effects.ExecuteAsync(effect, ended.Token);
                Arm(start);
                while (!_protocol.IsEnded)
                {
                    if (!_inputs.Reader.TryRead(out var input))
                    {
                        if (_client?.Reader.Busy != true) _writes.TurnEnded(); // nothing more at once, and no client message on its way
                        input = await _inputs.Reader.ReadAsync(stopping);
                    }
                    // Before every input, so a connect that arrives after the expiry is judged by it, tick or no tick.
                    if (_connectsUntil is { } until && _time.GetUtcNow() >= until)
                    {
                        _connectsUntil = null;
                        _protocol.EndConnects(until);
                    }
                    // Before every input too (a volatile read and a reference compare while nothing changed): a connect that
                    // arrives after a reload returned is judged by the new rules, not by the old ones until the next tick.
                    if (_services.Settings?.Current is { } latest && !ReferenceEquals(latest, _serverSettings))
                    {
                        _serverSettings = latest;
                        _protocol.Reconfigure(latest);
                    }
                    if (input.IsWake && _grantOwed && _client is { } heldBack && heldBack.Client.Tcp.HasEnded())
                    {
                        // Gone while the reader waits for a grant (or between messages): the kernel knows before any frame says so.
                        _log.LogDebug("client {Client} reset or closed its connection", _observer.Client);
                        input = Input.ClientLost;
                    }
                    if (input.IsResumeAsked && Detach() is { } old)
                    {
                        _ = _resumes.TakeOverAsync(old, input);
                        continue;
                    }
                    if (input.IsResumeRefused && _resumes.TakeReturned() is { } back) Attach(back);
                    _writes.InputTaken(completion: input.IsWriteCompleted);
                    await StepAsync(input, ended.Token);
                }
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                await StepAsync(Input.ServerStopping, CancellationToken.None);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // A bug of ours: logged once; the client hears code 1 and close 1011, and the close handshake still runs.
                _log.LogError(e, "session from {Client} failed unexpectedly", _observer.Client);
                try
                {
                    await StepAsync(Input.NewRunnerFault("the server hit an internal error (it is in the server's log)"), CancellationToken.None);
                }
                catch (Exception again) when (again is not OperationCanceledException)
                {
                    _effects.CloseUnlessDecided(1011, "unexpected server error");
                }
            }
            finally
            {
                // The session's end (closing its connections and the client, the close handshake, its log line, Kestrel's
                // teardown of the request) goes to the thread pool: the loop may have run on a socket's event thread, where
                // a logger that waits for room in its queue would hold up every other socket.
                await Task.Yield();
                _queued = _budget.Update(_queued, 0);
                _kept = _services.Kept.Update(_kept, 0);
                _inputs.Writer.TryComplete();
                _resumes.Ended();
            }
        }
        if (Detach() is { } client)
        {
            var (status, reason) = _effects.CloseWith ?? NoDecision;
            await client.CloseAsync(status, reason);
        }
    }

    private async Task StepAsync(Input input, CancellationToken cancel)
    {
        var now = _timer.Now();
        var effects = _protocol.Step(now, input);
        try
        {
            // The close the core decided is recorded first: it only names the close sent after the loop, and a send
            // before it that fails (the client went away) must not leave the session without it.
            foreach (var effect in effects)
                if (effect.IsCloseClient) await _effects.ExecuteAsync(effect, cancel);
            foreach (var effect in effects)
                if (!effect.IsCloseClient) await _effects.ExecuteAsync(effect, cancel);
        }
        finally
        {
            _reads.Done(input); // the core is done with it: its pooled buffer goes back, and a peer read's ticket
        }
        _queued = _budget.Update(_queued, _protocol.QueuedBytes);
        // Kept bytes have a server-wide bound of their own, which holds back the peers' reads, never the client's (whose acks
        // are what lets kept bytes go): a session that keeps some reads its peers no more while all together keep the most.
        _kept = _services.Kept.Update(_kept, (int)Math.Min(int.MaxValue, _protocol.KeptBytes));
        _heldByKept = _kept > 0 && !_services.Kept.HasRoom;
        _reads.Open = _protocol.AcceptsPeerData && !_heldByKept;
        _resumes.Settle(_protocol.IsResumable);
        // Credentials presented in the connection were accepted: their expiry ends connects, as an upgrade token's does.
        if (_effects.TakeCredentialsExpiry() is { } expires) _connectsUntil = expires;
        // A client message used the reader's grant; any step (a wake-up too) may make room for the next one.
        _grantOwed |= input.IsClientText || input.IsClientBinary;
        if (input.IsClientText || input.IsClientBinary) _resumes.Retire();
        if (_grantOwed && _client is { } client && _protocol.AcceptsFrame && (_queued == 0 || _budget.HasRoom))
        {
            _grantOwed = false;
            client.Reader.Grant();
        }
        Arm(now);
        if (_protocol.IsEnded) return;
        // The client is gone without a close: a send to it failed, or (suspended) its reader said so. A suspended session lets it go.
        if (_resumes.TakeLost())
        {
            if (Detach() is { } lost) _ = lost.AbortAsync();
            await StepAsync(Input.ClientLost, cancel);
        }
        else if (_protocol.IsSuspended && Detach() is { } gone) _ = gone.AbortAsync();
    }
}
