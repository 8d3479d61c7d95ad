using System.Net.Sockets;

namespace Ws2s.AspNetCore.Connectors;

/// <summary>
/// A connected peer as the pump sees it, whatever connector produced it: the stream the bytes flow
/// through, how to half-close it, the socket under it when there is one (bytes the peer sent that
/// nobody read are taken from it before a TLS handshake), and what else it holds (an SSH tunnel),
/// all released with it.
/// </summary>
public sealed class PeerStream(Stream stream, Action shutdownSend, Socket? socket = null, IDisposable? holds = null) : IDisposable
{
    public Stream Stream => stream;

    /// <summary>The socket under the stream, if the peer is one (TCP, Unix); null for other streams.</summary>
    public Socket? Socket => socket;

    /// <summary>A peer over a connected socket (TCP, Unix), holding <paramref name="holds"/> until it is disposed.</summary>
    public static PeerStream Of(Socket socket, IDisposable? holds = null) =>
        new(new NetworkStream(socket, ownsSocket: false), () => socket.Shutdown(SocketShutdown.Send), socket, holds);

    /// <summary>The same peer, its bytes now flowing through <paramref name="secured"/> (TLS over this stream).</summary>
    public PeerStream Secured(Stream secured) => new(secured, shutdownSend, socket, holds);

    /// <summary>Sends FIN (or the stream's end): no more bytes go to the peer; reading goes on.</summary>
    public void ShutdownSend() => shutdownSend();

    public void Dispose()
    {
        stream.Dispose();
        socket?.Dispose();
        holds?.Dispose();
    }
}
