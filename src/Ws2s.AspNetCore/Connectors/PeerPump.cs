using System.Buffers;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Ws2s.AspNetCore.Sessions;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Connectors;

/// <summary>
/// Moves bytes between one connected peer and its session, for every kind of connection (the
/// connector's <see cref="PeerStream"/>): reads into pooled buffers (handed to the core, returned by
/// the session); writes and half-close are the <see cref="PeerWriter"/>'s. What happens is reported to the session as inputs of the generation (<paramref name="inputs"/>):
/// a read waits for room first (<see cref="GenerationInputs.RoomAsync"/>), so a peer whose client is slow holds no buffer.
/// </summary>
internal sealed class PeerPump(GenerationInputs inputs, PeerStream peer)
{

    /// <summary>The buffer of a single read from the peer: its bytes are one <c>recv data</c> message (or one Wisp DATA packet).</summary>
    public const int ReadChunkBytes = 64 * 1024;

    /// <summary>
    /// Bytes kept free at the start of every read buffer, before what the peer sent: room for a Wisp DATA header, so a Wisp
    /// connection sends a peer's bytes without copying them (<see cref="WispData"/>).
    /// </summary>
    public const int HeaderRoom = WispPacket.HeaderBytes;

    /// <summary>
    /// A peer's bytes as a Wisp DATA packet. A read of this pump (the buffer is ws2s's, lent to the session until its step is
    /// done) has <see cref="HeaderRoom"/> free bytes before what it read: the header goes there and the packet is the read
    /// buffer itself. Bytes from anywhere else are copied behind a header.
    /// </summary>
    public static ReadOnlyMemory<byte> WispData(uint stream, ReadOnlyMemory<byte> payload)
    {
        if (!MemoryMarshal.TryGetArray(payload, out var read) || read.Offset != HeaderRoom || read.Array is not { } buffer)
            return WispPacket.data(stream, payload.Span);
        WispPacket.writeDataHeader(buffer.AsSpan(0, HeaderRoom), stream);
        return buffer.AsMemory(0, HeaderRoom + read.Count);
    }

    /// <summary>
    /// Reads until the peer finishes. Each read first waits with a zero-byte read, so a connection
    /// that goes quiet holds no buffer (even after a read that filled one: skipping the wait then
    /// left a 64 KiB buffer pinned by every session whose peer went quiet right after a full read;
    /// the extra call costs at most one syscall per 64 KiB). The bounded input channel makes this
    /// wait while the client is slow: TCP flow control does the rest.
    /// </summary>
    /// <remarks>
    /// Its caller holds a lock: when the peer has sent something already (the first wait is over at once), the pump goes
    /// on from the thread pool, so that the session never runs under that lock. Otherwise it goes on where the data's
    /// arrival is seen, as every later read does: opening a stream then wakes no pool thread (on a machine of few cores,
    /// the pool's threads spinning for work after each wake took the CPU the client and the peer needed).
    /// </remarks>
    public async Task ReadAsync(CancellationToken cancel)
    {
        var first = true;
        try
        {
            while (true)
            {
                // A zero-byte read: waits for data without holding a buffer (its count means nothing).
#pragma warning disable CA2022
                var data = peer.Stream.ReadAsync(Memory<byte>.Empty, cancel);
#pragma warning restore CA2022
                if (first && data.IsCompleted) await Task.Yield();
                first = false;
                await data;
                // While the session cannot take the read (its client is slow), wait without a buffer: a session with many
                // peers (Wisp's streams) would otherwise pin a full buffer for each of them.
                if (!await inputs.RoomAsync()) return;
                var buffer = ArrayPool<byte>.Shared.Rent(ReadChunkBytes);
                var ticket = true;
                int read;
                try
                {
                    var reading = peer.Stream.ReadAsync(buffer.AsMemory(HeaderRoom, ReadChunkBytes - HeaderRoom), cancel);
                    if (!reading.IsCompleted)
                    {
                        // The wait ended with nothing to read yet (a wait may end early: a socket's did under a burst of Wisp
                        // opens, and its session stalled with every ticket held by such reads). Wait without the ticket.
                        inputs.GiveBack();
                        ticket = false;
                    }
                    read = await reading;
                }
                catch
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    if (ticket) inputs.GiveBack();
                    throw;
                }
                if (read == 0)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    if (ticket) inputs.GiveBack();
                    await inputs.PostAsync(Input.NewPeerFinished(inputs.Generation));
                    return;
                }
                if (!ticket && !await inputs.RoomAsync())
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    return;
                }
                if (!await inputs.PostAsync(Input.NewReceived(inputs.Generation, new ReadOnlyMemory<byte>(buffer, HeaderRoom, read))))
                {
                    // This generation is closed (a session goes on after a connection it replaced): its ticket goes back.
                    ArrayPool<byte>.Shared.Return(buffer);
                    inputs.GiveBack();
                    return;
                }
            }
        }
        catch (IOException e) when (!cancel.IsCancellationRequested)
        {
            await inputs.PostAsync(Input.NewSocketFailed(inputs.Generation, SocketWords.Of(e)));
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or IOException)
        {
        }
        catch (Exception e)
        {
            // Reported here, not by a task watching this one: an idle stream keeps one state machine, not two.
            await inputs.FaultAsync(e);
        }
    }
}
