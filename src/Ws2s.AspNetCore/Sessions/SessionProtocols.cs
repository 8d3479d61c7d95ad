using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Sessions;

/// <summary>One session of a protocol the core defines, as the session runner drives it: inputs and time in, effects out.</summary>
internal interface ISessionProtocol
{
    /// <summary>Effects to carry out before the first input; the session begins at <paramref name="now"/>.</summary>
    FSharpList<Effect> Start(Instant now);

    FSharpList<Effect> Step(Instant now, Input input);

    /// <summary>When the session must be woken (<see cref="Input.Wake"/>) if nothing else happens first; null: never.</summary>
    Instant? NextDeadline { get; }

    /// <summary>May the runner read another client frame now?</summary>
    bool AcceptsFrame { get; }

    /// <summary>Bytes of client requests waiting behind the pending operation.</summary>
    int QueuedBytes { get; }

    bool IsEnded { get; }

    /// <summary>The server's settings changed: new connects follow them (the session's own scopes stay).</summary>
    void Reconfigure(Session.Settings server);

    /// <summary>The session's token expired at <paramref name="expiredAt"/>: no more connects; the open connection goes on.</summary>
    void EndConnects(DateTimeOffset expiredAt);

    /// <summary>Has a resumable connection (it holds a resume token).</summary>
    bool IsResumable => false;

    /// <summary>Lost its client and waits for a resume.</summary>
    bool IsSuspended => false;

    /// <summary>May its peers be read now?</summary>
    bool AcceptsPeerData => true;

    /// <summary>Peer bytes it keeps for a resume.</summary>
    long KeptBytes => 0;
}

/// <summary>The ws2s JSON protocol (with its binary data mode).</summary>
internal sealed class Ws2sProtocol(Session.Settings settings) : ISessionProtocol
{
    private Session.Session? _state;

    public FSharpList<Effect> Start(Instant now)
    {
        _state = Session.start(settings, now);
        return FSharpList<Effect>.Empty;
    }

    public FSharpList<Effect> Step(Instant now, Input input)
    {
        var (next, effects) = Session.step(_state!, now, input);
        _state = next;
        return effects;
    }

    public Instant? NextDeadline => Session.nextDeadline(_state!) is { } due ? due.Value : null;

    public bool AcceptsFrame => Session.acceptsRequest(_state!);

    public int QueuedBytes => Session.queuedBytes(_state!);

    public bool IsEnded => _state!.Phase.IsEnded;

    public void Reconfigure(Session.Settings server) => _state = Session.reconfigure(server, _state!);

    public void EndConnects(DateTimeOffset expiredAt) => _state = Session.endConnects(expiredAt, _state!);

    public bool IsResumable => _state!.Resumable is not null;

    public bool IsSuspended => _state!.SuspendedAt is not null;

    public bool AcceptsPeerData => Session.acceptsPeerData(_state!);

    public long KeptBytes => Session.keptBytes(_state!);
}

/// <summary>The websockify protocol: binary frames to and from one fixed target.</summary>
internal sealed class WebsockifyProtocol(Session.Settings settings, Destination target) : ISessionProtocol
{
    private WebsockifySession.WebsockifySession? _state;

    public FSharpList<Effect> Start(Instant now)
    {
        var (state, effects) = WebsockifySession.start(settings, now, target);
        _state = state;
        return effects;
    }

    public FSharpList<Effect> Step(Instant now, Input input)
    {
        var (next, effects) = WebsockifySession.step(_state!, now, input);
        _state = next;
        return effects;
    }

    public Instant? NextDeadline => WebsockifySession.nextDeadline(_state!) is { } due ? due.Value : null;

    public bool AcceptsFrame => WebsockifySession.acceptsFrame(_state!);

    public int QueuedBytes => _state is null ? 0 : WebsockifySession.queuedBytes(_state);

    public bool IsEnded => WebsockifySession.isEnded(_state!);

    public void Reconfigure(Session.Settings server)
    {
        if (_state is not null) _state = WebsockifySession.reconfigure(server, _state);
    }

    /// <summary>A websockify session makes its one connect at its start: there are no later connects to end.</summary>
    public void EndConnects(DateTimeOffset expiredAt)
    {
    }
}

/// <summary>Wisp: many streams over one WebSocket, each a ws2s session of its own (see <see cref="WispSession"/>).</summary>
internal sealed class WispProtocol(Session.Settings settings, WispStreams.WispSettings wisp) : ISessionProtocol
{
    private WispStreams.WispSession? _state;

    public FSharpList<Effect> Start(Instant now)
    {
        var (state, effects) = WispSession.start(settings, wisp, now);
        _state = state;
        return effects;
    }

    public FSharpList<Effect> Step(Instant now, Input input)
    {
        var (next, effects) = WispSession.step(_state!, now, input);
        _state = next;
        return effects;
    }

    public Instant? NextDeadline => WispSession.nextDeadline(_state!) is { } due ? due.Value : null;

    public bool AcceptsFrame => WispSession.acceptsFrame(_state!);

    public int QueuedBytes => _state is null ? 0 : WispSession.queuedBytes(_state);

    public bool IsEnded => WispSession.isEnded(_state!);

    public void Reconfigure(Session.Settings server)
    {
        if (_state is not null) _state = WispSession.reconfigure(server, _state);
    }

    public void EndConnects(DateTimeOffset expiredAt)
    {
        if (_state is not null) _state = WispSession.endConnects(expiredAt, _state);
    }
}
