using System.Buffers;
using System.Net.Sockets;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Connectors;

/// <summary>
/// Moves bytes between one connected peer socket and its session, for every kind of connection:
/// reads into pooled buffers (handed to the core, returned by the session), writes, half-close.
/// What happens is reported through <paramref name="post"/> as inputs of <paramref name="generation"/>.
/// </summary>
internal sealed class PeerPump(long generation, Socket socket, Func<Input, ValueTask<bool>> post)
{
    /// <summary>The most a single read takes from the peer: one <c>recv data</c> message.</summary>
    public const int ReadChunkBytes = 64 * 1024;

    /// <summary>
    /// Reads until the peer finishes. When the last read did not fill the buffer (the peer may go
    /// quiet), it first waits with a zero-byte read so an idle connection pins no buffer. The bounded
    /// input channel makes this wait while the client is slow: TCP flow control does the rest.
    /// </summary>
    public async Task ReadAsync(CancellationToken cancel)
    {
        try
        {
            var mayBeIdle = true;
            while (true)
            {
                if (mayBeIdle) await socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None, cancel);
                var buffer = ArrayPool<byte>.Shared.Rent(ReadChunkBytes);
                int read;
                try
                {
                    read = await socket.ReceiveAsync(buffer.AsMemory(0, ReadChunkBytes), SocketFlags.None, cancel);
                }
                catch
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    throw;
                }
                if (read == 0)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    await post(Input.NewPeerFinished(generation));
                    return;
                }
                mayBeIdle = read < ReadChunkBytes;
                if (!await post(Input.NewReceived(generation, new ReadOnlyMemory<byte>(buffer, 0, read))))
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    return;
                }
            }
        }
        catch (SocketException e)
        {
            await post(Input.NewSocketFailed(generation, SocketWords.Of(e.SocketErrorCode)));
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    public async Task WriteAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancel)
    {
        try
        {
            while (!bytes.IsEmpty)
            {
                var sent = await socket.SendAsync(bytes, SocketFlags.None, cancel);
                bytes = bytes[sent..];
            }
        }
        catch (SocketException e)
        {
            await post(Input.NewSocketFailed(generation, SocketWords.Of(e.SocketErrorCode)));
            return;
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            return;
        }
        await post(Input.NewWriteCompleted(generation));
    }

    /// <summary>Sends FIN; reading goes on until the peer closes.</summary>
    public void ShutdownSend()
    {
        try
        {
            socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already broken (the reader reports it) or closed.
        }
    }
}
