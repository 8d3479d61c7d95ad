using System.Net.WebSockets;
using Ws2s.AspNetCore.Telemetry;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Sessions;

/// <summary>
/// A client that asked to take a session over (<c>resume</c>): its WebSocket (its reader stopped), the peer bytes it has
/// had, the token it claimed (good again if the session refuses), and the verdict it waits for (null: taken over).
/// </summary>
internal sealed class ResumeOffer(ClientSocket client, long received, string token, System.Net.IPAddress from)
{
    /// <summary>The address of the client that offers itself (a refusal counts among its failed attempts).</summary>
    public System.Net.IPAddress From => from;

    public ClientSocket Client => client;

    public long Received => received;

    public string Token => token;

    public TaskCompletionSource<string?> Verdict { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>
/// How one session's clients come and go, carrying out the core's resume effects: the WebSocket its effects speak
/// through, its resume token (issued with <c>connect done</c> and each <c>resume done</c>, revoked once the connection is no
/// longer resumable), the resume this session asks for (its client handed to the session it resumes, or back to it when
/// refused), and the resumes other clients offer it (<see cref="OfferAsync"/>).
/// </summary>
internal sealed class SessionResumes(SessionRunner session, ResumeRegistry? registry, SessionObserver observer, System.Net.IPAddress address) : IClientSide
{
    private string? _token;

    /// <summary>The token the last resume used: good until its WebSocket says something (its answer, with the new token, may have been lost).</summary>
    private string? _retiring;

    private ResumeOffer? _offer;
    private volatile bool _lost;
    private volatile ClientSocket? _returned;

    public WebSocket? Socket => session.Client?.Client.Socket;

    public void Lost() => _lost = true;

    /// <summary>Did a send to the client fail since the last time asked?</summary>
    public bool TakeLost()
    {
        var lost = _lost;
        _lost = false;
        return lost;
    }

    /// <summary>The client a refused resume gives back to this session, once (attach it before answering the refusal).</summary>
    public ClientSocket? TakeReturned() => Interlocked.Exchange(ref _returned, null);

    public string TokenFor(Response response)
    {
        if (registry is null) return "";
        if (response.IsConnectedResumable) _token = registry.Issue(session, _token);
        return _token ?? "";
    }

    /// <summary>After each step: a connection that is no longer resumable has no token.</summary>
    public void Settle(bool resumable)
    {
        if (resumable) return;
        Retire();
        if (_token is not { } token) return;
        registry?.Revoke(token, session);
        _token = null;
    }

    /// <summary>The client that resumed said something: it has the new token, and the one it used is good no more.</summary>
    public void Retire()
    {
        if (_retiring is not { } used) return;
        registry?.Revoke(used, session);
        _retiring = null;
    }

    /// <summary>
    /// The session ended: its token is good no more, a client offering to resume it hears that nothing holds it, and a client
    /// a refused resume gave back too late is let go.
    /// </summary>
    public void Ended()
    {
        Settle(resumable: false);
        Interlocked.Exchange(ref _offer, null)?.Verdict.TrySetResult(ResumeRegistry.NoSession);
        if (TakeReturned() is { } orphan)
        {
            orphan.Abort();
            orphan.Release();
        }
    }

    public ValueTask HandOver(ResumeToken token, long received)
    {
        var (target, refusal) = registry?.Claim(token.Text, session.Identity, address) ?? (null, ResumeRegistry.NoSession);
        if (target == session)
        {
            registry!.Restore(token.Text, session);
            (target, refusal) = (null, ResumeRegistry.NoSession);
        }
        if (target is null || session.Detach() is not { } client)
        {
            observer.ResumeRefused();
            _ = session.PostAsync(Input.NewResumeRefused(refusal ?? ResumeRegistry.NoSession));
        }
        else _ = HandOverAsync(target, client, token.Text, received);
        return ValueTask.CompletedTask;
    }

    /// <summary>Offers this session's client to <paramref name="target"/>; refused, it comes back here (or, this session over meanwhile, is let go).</summary>
    private async Task HandOverAsync(SessionRunner target, AttachedClient client, string token, long received)
    {
        var socket = client.HandOn();
        var refusal = await target.Resumes.OfferAsync(new ResumeOffer(socket, received, token, address));
        if (refusal is null)
        {
            await session.PostAsync(Input.ResumedElsewhere);
            return;
        }
        observer.ResumeRefused();
        _returned = socket;
        if (!await session.PostAsync(Input.NewResumeRefused(refusal)) && TakeReturned() is { } orphan)
        {
            orphan.Abort();
            orphan.Release();
        }
    }

    /// <summary>
    /// A client offers to take this session over: the session's core decides (<c>TakeClient</c> or <c>RefuseResume</c>).
    /// The verdict: null when taken over, else the words of the refusal.
    /// </summary>
    public async Task<string?> OfferAsync(ResumeOffer offer)
    {
        if (Interlocked.CompareExchange(ref _offer, offer, null) is not null)
        {
            registry?.Restore(offer.Token, session);
            return "another resume of this session is under way";
        }
        // A client the session still has is let go at once, from here: the session may be stuck in a send to it (a client that
        // went silent fills the buffers), and would read the offer only once TCP gave up. (Its reader's last inputs still come
        // first: the session lets that reader finish before it takes the offer, see TakeOverAsync.)
        session.Client?.Client.Abort();
        if (!await session.PostAsync(Input.NewResumeAsked(offer.Received)))
        {
            Interlocked.CompareExchange(ref _offer, null, offer);
            return ResumeRegistry.NoSession;
        }
        return await offer.Verdict.Task;
    }

    /// <summary>
    /// A resume reaches a session that still has a client (the server has not seen it go): that client goes first, aborted,
    /// so that all it said is taken before the resume, which comes again after its loss.
    /// </summary>
    public async Task TakeOverAsync(AttachedClient old, Input resumeAsked)
    {
        await old.AbortAsync();
        if (await session.PostAsync(Input.ClientLost)) await session.PostAsync(resumeAsked);
    }

    public ValueTask TakeClient()
    {
        if (Interlocked.Exchange(ref _offer, null) is not { } offer)
        {
            _lost = true; // (no client offered itself: the session is without one)
            return ValueTask.CompletedTask;
        }
        session.Attach(offer.Client);
        if (registry is not null)
        {
            // The claimed token stays good until the new client speaks; any other is good no more.
            if (_retiring is { } older && older != offer.Token) registry.Revoke(older, session);
            if (_token is { } current && current != offer.Token) registry.Revoke(current, session);
            registry.Restore(offer.Token, session);
            _retiring = offer.Token;
            _token = registry.Issue(session, null);
        }
        offer.Verdict.TrySetResult(null);
        return ValueTask.CompletedTask;
    }

    public ValueTask RefuseResume(string reason)
    {
        if (Interlocked.Exchange(ref _offer, null) is { } offer)
        {
            // The claimed token is good again, if it is still this session's (it may have let its resumable connection go meanwhile).
            if (registry is not null && (offer.Token == _token || offer.Token == _retiring)) registry.Restore(offer.Token, session);
            registry?.Failed(offer.From);
            offer.Verdict.TrySetResult(reason);
        }
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// The client side of a session, as its effects reach it: the WebSocket it speaks through (none while suspended), the resume
/// token its answers carry, and the resume effects (see <see cref="SessionRunner"/>).
/// </summary>
internal interface IClientSide
{
    /// <summary>The client's WebSocket; null while the session has none (suspended, or handing it on).</summary>
    WebSocket? Socket { get; }

    /// <summary>A send to the client failed: it is gone.</summary>
    void Lost();

    /// <summary>The session's resume token for an answer that carries one (a new one for <c>connect done</c>).</summary>
    string TokenFor(Response response);

    ValueTask HandOver(ResumeToken token, long received);

    ValueTask TakeClient();

    ValueTask RefuseResume(string reason);
}
