using System.Net.Sockets;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Connectors;

/// <summary>Connects a TCP hop: one attempt at one address the policy checked (the core runs several at once, RFC 8305).</summary>
internal sealed class TcpConnector : INonBlockingConnector
{
    public string Scheme => "tcp";

    public async Task<PeerStream> ConnectAsync(Hop hop, PeerContext context, CancellationToken cancel)
    {
        var endpoint = ((Hop.TcpHop)hop).Endpoint;
        // Out of file descriptors, say: the constructor throws, and the connect fails in words ("too many open files").
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        InlineCompletions.Prefer(socket, inline: true); // the dial's rest, and the relay, run on the event thread (see INonBlockingConnector)
        try
        {
            await socket.ConnectAsync(endpoint, cancel);
            return PeerStream.Of(socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
