using System.Net.Sockets;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Connectors;

/// <summary>
/// Connects a Unix-domain socket hop at the path listed in <c>destinations.allow</c>. A symbolic link
/// at that path is refused, not followed: the operator listed a socket, and whoever can write its
/// folder must not be able to point the listing at another one (the folders on the way are the
/// operator's to keep safe; see docs/security.md).
/// </summary>
internal sealed class UnixConnector : IConnector
{
    public string Scheme => "unix";

    public async Task<PeerStream> ConnectAsync(Hop hop, PeerContext context, CancellationToken cancel)
    {
        var path = ((Hop.UnixHop)hop).Path;
        string? link;
        try
        {
            link = new FileInfo(path).LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A folder on the way this server may not search: a failed connect in words (code 2), not a runner fault.
            throw new DialFailedException(DialError.NewDialFailed($"cannot reach {path}: {e.Message}"));
        }
        if (link is not null)
            throw new DialFailedException(DialError.NewDialFailed($"{path} is a symbolic link: ws2s connects only to a socket at the listed path itself"));
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancel);
            return PeerStream.Of(socket);
        }
        catch (SocketException e) when (e.SocketErrorCode != SocketError.ConnectionRefused && !Path.Exists(path))
        {
            socket.Dispose();
            throw new DialFailedException(DialError.NewDialFailed($"no socket at {path}"));
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
