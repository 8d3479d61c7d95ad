using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging.Abstractions;
using Ws2s.AspNetCore.Connectors;
using Ws2s.AspNetCore.Sessions;
using Ws2s.Protocol;

namespace Ws2s.Host.Tests;

/// <summary>
/// Closing a peer whose read is waiting: ws2s shuts its socket down so the read ends on the socket's event thread (not
/// through the thread pool, as a cancelled or aborted socket read does), and closes the socket once the read has ended.
/// These tests hold it to what a close must still do: the peer hears the end, the socket is released, nothing is reported.
/// </summary>
public sealed class ConnectedPeerTests
{
    /// <summary>A loopback connection whose near end is a connected peer of generation 7, reading into <paramref name="inputs"/>.</summary>
    private static async Task<(Socket Far, Socket Near, ConnectedPeer Peer)> ReadingPeerAsync(Channel<Input> inputs, CancellationToken closed)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var far = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await far.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        var near = await listener.AcceptSocketAsync();
        var peer = new ConnectedPeer(PeerStream.Of(near), new GenerationInputs(7, inputs.Writer, NullLogger.Instance, closed), closed);
        peer.StartReading();
        return (far, near, peer);
    }

    [Fact]
    public async Task Closing_a_peer_whose_read_waits_releases_its_socket_and_the_peer_sees_the_end()
    {
        var inputs = Channel.CreateUnbounded<Input>();
        using var closed = new CancellationTokenSource();
        var (far, near, peer) = await ReadingPeerAsync(inputs, closed.Token);
        using var _ = far;
        // The read is waiting (nothing was sent); then the connection closes, as Connection.Dispose does it.
        closed.Cancel();
        peer.Dispose();
        using var patience = new CancellationTokenSource(WsClient.Patience);
        Assert.Equal(0, await far.ReceiveAsync(new byte[1], patience.Token)); // FIN
        while (!near.SafeHandle.IsClosed)
        {
            Assert.False(patience.IsCancellationRequested, "the socket was not released");
            await Task.Yield();
        }
        Assert.False(inputs.Reader.TryRead(out var heard), $"a closed connection reported {heard}");
    }

    [Fact]
    public async Task Closing_a_unix_socket_peer_whose_read_waits_releases_its_socket_too()
    {
        // Review: the close shuts the receiving side down to end the read; a Unix-domain socket must end it as TCP does.
        var path = Path.Combine(Directory.CreateTempSubdirectory("ws2s-unix-").FullName, "peer.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen();
        using var far = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await far.ConnectAsync(new UnixDomainSocketEndPoint(path));
        var near = await listener.AcceptAsync();
        var inputs = Channel.CreateUnbounded<Input>();
        using var closed = new CancellationTokenSource();
        var peer = new ConnectedPeer(PeerStream.Of(near), new GenerationInputs(7, inputs.Writer, NullLogger.Instance, closed.Token), closed.Token);
        peer.StartReading();
        closed.Cancel();
        peer.Dispose();
        using var patience = new CancellationTokenSource(WsClient.Patience);
        while (!near.SafeHandle.IsClosed)
        {
            Assert.False(patience.IsCancellationRequested, "the socket was not released");
            await Task.Yield();
        }
        Assert.Equal(0, await far.ReceiveAsync(new byte[1], patience.Token));
        Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
    }

    [Fact]
    public async Task Closing_a_peer_whose_bytes_are_left_unread_releases_its_socket_and_resets_the_connection()
    {
        var inputs = Channel.CreateBounded<Input>(1);
        using var closed = new CancellationTokenSource();
        var (far, near, peer) = await ReadingPeerAsync(inputs, closed.Token);
        using var _ = far;
        // The session takes nothing: the first read fills the channel, the next waits to post.
        await far.SendAsync(new byte[100]);
        using var patience = new CancellationTokenSource(WsClient.Patience);
        Assert.True(await inputs.Reader.WaitToReadAsync(patience.Token));
        await far.SendAsync(new byte[100]);
        closed.Cancel();
        peer.Dispose();
        while (!near.SafeHandle.IsClosed)
        {
            Assert.False(patience.IsCancellationRequested, "the socket was not released");
            await Task.Yield();
        }
        // Review: a FIN would tell the peer its bytes arrived; they were thrown away, and a reset says so (as a plain close does).
        var reset = await Assert.ThrowsAsync<SocketException>(async () => await far.ReceiveAsync(new byte[1], patience.Token));
        Assert.Equal(SocketError.ConnectionReset, reset.SocketErrorCode);
    }
}
