using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Ws2s.AspNetCore.Admission;
using Ws2s.AspNetCore.Configuration;
using Ws2s.AspNetCore.Telemetry;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Connectors;

/// <summary>
/// Opens a UDP hop: a socket connected to the one address the policy checked (the kernel then drops datagrams from
/// anyone else), as a stream whose every write is one datagram and every read one datagram (see <see cref="DatagramStream"/>).
/// What a client sends is held to <c>udp.maxPacketsPerSecond</c> and <c>udp.maxBytesPerSecond</c> per client address.
/// </summary>
internal sealed class UdpConnector(LiveConfiguration live, Ws2sMetrics metrics, TimeProvider time) : INonBlockingConnector
{
    private readonly ClientRates _rates = new(time);

    public string Scheme => "udp";

    public Task<PeerStream> ConnectAsync(Hop hop, PeerContext context, CancellationToken cancel)
    {
        var endpoint = ((Hop.UdpHop)hop).Endpoint;
        var socket = new Socket(endpoint.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            socket.Connect(endpoint); // no packet is sent: it fixes the peer, and ICMP errors come back as this socket's
            var stream = new DatagramStream(socket, bytes => _rates.Take(context.Client, (1, live.Current.Udp.MaxPacketsPerSecond), (bytes, live.Current.Udp.MaxBytesPerSecond)) || Dropped());
            return Task.FromResult(new PeerStream(stream, shutdownSend: () => { }, holds: socket));
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private bool Dropped()
    {
        metrics.UdpDropped();
        return false;
    }
}

/// <summary>
/// A connected datagram socket as a stream: a write sends one datagram (never split or merged), a read receives one
/// (the pump reads with 64 KiB, more than any datagram holds). A zero-byte read waits for a datagram without taking it.
/// A datagram <paramref name="admit"/> refuses is dropped, as the network may drop any.
/// </summary>
internal sealed class DatagramStream(Socket socket, Func<int, bool> admit) : Stream
{
    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        try
        {
            // An empty read of a datagram socket would take the datagram and lose it: peek instead.
            if (buffer.IsEmpty) return await socket.ReceiveAsync(buffer, SocketFlags.Peek, cancellationToken);
            int read;
            // An empty datagram would read as the stream's end; it carries nothing, so it is skipped.
            do read = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
            while (read == 0);
            return read;
        }
        catch (SocketException e)
        {
            throw new IOException(e.Message, e); // as NetworkStream does: the pump reports it in words (an ICMP "refused", say)
        }
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        // An empty write would be an empty datagram on the wire (the pump's buffer-releasing empty write, say): none is sent.
        if (buffer.IsEmpty || !admit(buffer.Length)) return;
        try
        {
            await socket.SendAsync(buffer, SocketFlags.None, cancellationToken);
        }
        catch (SocketException e)
        {
            throw new IOException(e.Message, e);
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();
    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();
    public override void Flush() { }
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
