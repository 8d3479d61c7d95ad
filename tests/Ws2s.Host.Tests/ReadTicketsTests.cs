using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging.Abstractions;
using Ws2s.AspNetCore.Connectors;
using Ws2s.AspNetCore.Sessions;
using Ws2s.Protocol;

namespace Ws2s.Host.Tests;

/// <summary>
/// Attack (review): a Wisp client with many streams that stops reading. Each stream's peer used to rent a 64 KiB read and
/// wait with it; now a peer reads only with one of its session's read tickets, so at most that many reads wait.
/// </summary>
public sealed class ReadTicketsTests
{
    [Fact]
    public async Task Peers_of_a_session_that_is_not_reading_hold_no_more_reads_than_it_has_tickets()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var inputs = Channel.CreateBounded<Input>(1); // a session loop that takes nothing
        var reads = new SessionReads(2);
        var peers = new List<(Socket Far, Socket Near)>();
        for (var i = 0; i < 5; i++)
        {
            var far = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await far.ConnectAsync(IPAddress.Loopback, port);
            var near = await listener.AcceptSocketAsync();
            peers.Add((far, near));
            var generation = new GenerationInputs(i, inputs.Writer, NullLogger.Instance, CancellationToken.None, reads);
            _ = new PeerPump(generation, PeerStream.Of(near)).ReadAsync(CancellationToken.None);
            await far.SendAsync(new byte[100]);
        }
        try
        {
            int Read() => peers.Count(p => p.Near.Available == 0);
            await Until(() => Read() == 2, "two peers read");
            // The others wait for a ticket without a buffer: their bytes are still in the kernel.
            Assert.Equal(3, peers.Count(p => p.Near.Available == 100));
            Assert.Equal(0, reads.Available);
            // The loop relays one read and gives its ticket back: one more peer reads.
            Assert.True(inputs.Reader.TryRead(out var relayed) && relayed.IsReceived);
            reads.GiveBack();
            await Until(() => Read() == 3, "a third peer read once a ticket came back");
        }
        finally
        {
            foreach (var (far, near) in peers)
            {
                far.Dispose();
                near.Dispose();
            }
        }
    }

    /// <summary>
    /// A stream whose zero-byte wait ends with no data behind it (a stream may end that wait early; a socket's did so now and
    /// then under a burst of Wisp opens, found by the bench: its session stalled with every ticket held by such reads).
    /// </summary>
    private sealed class EarlyWakingStream : TestStream
    {
        public readonly TaskCompletionSource<int> Data = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            buffer.IsEmpty ? ValueTask.FromResult(0) : new ValueTask<int>(Data.Task.WaitAsync(cancellationToken));

        public override bool CanRead => true;
    }

    [Fact]
    public async Task A_peer_woken_with_nothing_to_read_holds_no_ticket_while_it_waits()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var inputs = Channel.CreateUnbounded<Input>();
        var reads = new SessionReads(1);
        using var stop = new CancellationTokenSource();
        // The quiet peer takes the one ticket's turn first: its wait ends, but no byte follows.
        var quiet = new EarlyWakingStream();
        var quietPump = new PeerPump(new GenerationInputs(1, inputs.Writer, NullLogger.Instance, CancellationToken.None, reads), new PeerStream(quiet, () => { }))
            .ReadAsync(stop.Token);
        using var far = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await far.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        using var near = await listener.AcceptSocketAsync();
        _ = new PeerPump(new GenerationInputs(2, inputs.Writer, NullLogger.Instance, CancellationToken.None, reads), PeerStream.Of(near)).ReadAsync(stop.Token);
        await far.SendAsync(new byte[] { 42 });
        // The other peer's byte reaches the session: the quiet one's wait does not hold the ticket.
        using var patience = new CancellationTokenSource(WsClient.Patience);
        var received = await inputs.Reader.ReadAsync(patience.Token);
        Assert.True(received is Input.Received { Generation: 2 }, $"expected generation 2's byte, got {received}");
        // And the quiet peer's byte, when it comes, is relayed too once the ticket is back.
        reads.Done(received);
        quiet.Data.SetResult(0); // (ends its read: its stream's end)
        Assert.True((await inputs.Reader.ReadAsync(patience.Token)).IsPeerFinished);
        stop.Cancel();
        await quietPump;
    }

    /// <summary>Waits for a condition of sockets the test cannot be told about (their kernel buffers), polling, with a limit.</summary>
    private static async Task Until(Func<bool> condition, string what)
    {
        using var limit = new CancellationTokenSource(WsClient.Patience);
        while (!condition())
        {
            Assert.False(limit.IsCancellationRequested, $"not within {WsClient.Patience.TotalSeconds} s: {what}");
            await Task.Yield();
        }
    }
}
