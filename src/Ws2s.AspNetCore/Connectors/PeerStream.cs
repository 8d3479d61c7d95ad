using System.Net.Sockets;

namespace Ws2s.AspNetCore.Connectors;

/// <summary>
/// A connected peer as the pump sees it: the stream the bytes flow through (a plain
/// <see cref="NetworkStream"/> today; a TLS stream over the same socket is another connector's
/// output), how to half-close it, and the socket under it, closed with it.
/// </summary>
internal sealed class PeerStream(Socket socket, Stream stream) : IDisposable
{
    public Stream Stream => stream;

    public Socket Socket => socket;

    /// <summary>The same peer, its bytes now flowing through <paramref name="secured"/> (TLS over this stream).</summary>
    public PeerStream Secured(Stream secured) => new(socket, secured);

    /// <summary>A plain TCP peer.</summary>
    public static PeerStream Plain(Socket socket) => new(socket, new NetworkStream(socket, ownsSocket: false));

    /// <summary>Sends FIN: no more bytes go to the peer; reading goes on.</summary>
    public void ShutdownSend() => socket.Shutdown(SocketShutdown.Send);

    public void Dispose()
    {
        stream.Dispose();
        socket.Dispose();
    }
}
