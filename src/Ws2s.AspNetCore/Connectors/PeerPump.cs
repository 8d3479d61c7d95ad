using System.Buffers;
using System.Net.Sockets;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Connectors;

/// <summary>
/// Moves bytes between one connected peer and its session, for every kind of connection (the
/// connector's <see cref="PeerStream"/>): reads into pooled buffers (handed to the core, returned by
/// the session), writes, half-close. What happens is reported through <paramref name="post"/> as
/// inputs of <paramref name="generation"/>.
/// </summary>
internal sealed class PeerPump(long generation, PeerStream peer, Func<Input, ValueTask<bool>> post)
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
                // A zero-byte read: waits for data without holding a buffer (its count means nothing).
#pragma warning disable CA2022
                if (mayBeIdle) await peer.Stream.ReadAsync(Memory<byte>.Empty, cancel);
#pragma warning restore CA2022
                var buffer = ArrayPool<byte>.Shared.Rent(ReadChunkBytes);
                int read;
                try
                {
                    read = await peer.Stream.ReadAsync(buffer.AsMemory(0, ReadChunkBytes), cancel);
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
        catch (IOException e) when (!cancel.IsCancellationRequested)
        {
            await post(Input.NewSocketFailed(generation, SocketWords.Of(e)));
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or IOException)
        {
        }
    }

    public async Task WriteAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancel)
    {
        try
        {
            await peer.Stream.WriteAsync(bytes, cancel);
        }
        catch (IOException e) when (!cancel.IsCancellationRequested)
        {
            await post(Input.NewSocketFailed(generation, SocketWords.Of(e)));
            return;
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or IOException)
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
            peer.ShutdownSend();
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already broken (the reader reports it) or closed.
        }
    }
}
