using System.Net.Sockets;

namespace Ws2s.AspNetCore.Sessions;

/// <summary>
/// The kernel's view of a client's TCP connection. A session held back behind a slow peer reads
/// nothing from its client, so a client that vanishes (reset, or gone after closing) would not be
/// noticed until the idle timeout; the session asks the kernel instead, once a tick. The keep-alive
/// frames the server sends make a client machine whose socket is gone answer with a reset, which
/// shows here as a closed connection.
/// </summary>
internal sealed class ClientTcp(Socket? socket)
{
    private const int IpProtoTcp = 6, TcpInfo = 11, TcpClose = 7;

    private readonly byte[] _info = new byte[8];

    /// <summary>
    /// True once the connection is closed (reset by the client, or timed out); false while it is
    /// open or half-closed, and always where the kernel cannot tell (not Linux, no socket).
    /// </summary>
    public bool HasEnded()
    {
        if (socket is null || !OperatingSystem.IsLinux()) return false;
        try
        {
            // struct tcp_info begins with tcpi_state (linux/tcp.h): TCP_CLOSE is 7.
            return socket.GetRawSocketOption(IpProtoTcp, TcpInfo, _info) > 0 && _info[0] == TcpClose;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return true;
        }
    }
}

/// <summary>
/// Who a session's client is, beyond its WebSocket: its address (for SSH logins and quotas), when the token that admitted it
/// expires (then it may start no more connects), if it does, and who admitted it, as a resume must match it.
/// </summary>
/// <remarks>
/// <c>Unproven</c>: the slot a client admitted without its token holds until it presents one (see <see cref="Admission.AdmissionPolicy"/>).
/// <c>Lease</c>: the session's slots (its client's sessions, its subject's), held while the session lasts: past its WebSocket, if it is suspended.
/// </remarks>
internal sealed record SessionClient(System.Net.IPAddress Address, DateTimeOffset? TokenExpires = null, IDisposable? Unproven = null,
    IDisposable? Lease = null, ResumeIdentity? Identity = null)
{
    public ResumeIdentity Identity { get; } = Identity ?? ResumeIdentity.None;
}
