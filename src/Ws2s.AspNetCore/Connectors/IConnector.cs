using System.Net;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Connectors;

/// <summary>
/// Turns one kind of hop into a connected <see cref="PeerStream"/>. Register one per kind of peer with
/// <c>services.TryAddEnumerable(ServiceDescriptor.Singleton&lt;IConnector, MyConnector&gt;())</c>; the
/// session's connection picks it by <see cref="Hop.Scheme"/>. The core has judged the hop already: a
/// connector only reaches what it is given.
/// </summary>
public interface IConnector
{
    /// <summary>The hops it connects, by <see cref="Hop.Scheme"/>: <c>tcp</c>, <c>unix</c>, <c>ssh</c>, or a named peer's scheme.</summary>
    string Scheme { get; }

    /// <summary>
    /// Connects. A peer that cannot be reached throws <see cref="DialFailedException"/> (or a
    /// <see cref="System.Net.Sockets.SocketException"/>, worded by the connection); when
    /// <paramref name="cancel"/> fires (the connection closed, or another attempt won) it releases
    /// what it holds and throws <see cref="OperationCanceledException"/>.
    /// </summary>
    Task<PeerStream> ConnectAsync(Hop hop, PeerContext context, CancellationToken cancel);
}

/// <summary>
/// A connector of ws2s's own whose <see cref="IConnector.ConnectAsync"/> never blocks (no name to resolve, no file to look at,
/// no handshake): a dial starts it on the session's thread, which may be a socket's event thread, without first hopping to
/// the thread pool, and its socket completes the connect on the event thread too (<see cref="InlineCompletions"/>). On
/// loopback those two hops were most of what opening a stream cost beyond the connect itself. Its token is the one all of
/// a connection's attempts share, cancelled once one wins (the winner's too): it uses it for the connect only.
/// </summary>
internal interface INonBlockingConnector : IConnector;

/// <summary>What a connector may need of its session: who the client is (SSH logins are shared per client), and how to say the peer failed after it connected.</summary>
public sealed record PeerContext(IPAddress Client, Action<string> Failed);

/// <summary>The peer cannot be reached, in the core's words (code 2, or 6 through an SSH server).</summary>
public sealed class DialFailedException(DialError error) : Exception(error.Message)
{
    public DialError Error => error;
}
