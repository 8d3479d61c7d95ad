using System.Threading.Channels;
using Microsoft.Extensions.Logging.Abstractions;
using Ws2s.AspNetCore.Connectors;
using Ws2s.AspNetCore.Sessions;
using Ws2s.Protocol;

namespace Ws2s.Host.Tests;

/// <summary>
/// The peer's sending side (<see cref="PeerWriter"/>): what a session's turn writes goes to the peer in one send when the
/// turn ends; the core hears each write done at once, except while a send is in flight; FIN and a close come after the
/// bytes the core saw written.
/// </summary>
public sealed class PeerWriterTests
{
    /// <summary>A peer's stream that records every write; while <see cref="Stall"/> is set, a write waits for it.</summary>
    private sealed class RecordingStream : TestStream
    {
        public List<byte[]> Writes { get; } = [];
        public TaskCompletionSource? Stall { get; set; }
        public bool ShutDown { get; set; }
        /// <summary>Bytes written, in the order they reached the stream.</summary>
        public byte[] All => [.. Writes.SelectMany(w => w)];

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (ShutDown) throw new IOException("written after FIN");
            lock (Writes) Writes.Add(buffer.ToArray());
            if (Stall is { } stall) await stall.Task;
        }

        public override bool CanWrite => true;
    }

    private readonly Channel<Input> _inputs = Channel.CreateUnbounded<Input>();
    private readonly QueueBudget _budget = new(1 << 30);
    private readonly WriteBehind _turn;
    private readonly RecordingStream _stream = new();
    private readonly PeerWriter _writer;

    public PeerWriterTests()
    {
        _turn = new WriteBehind(_budget);
        var peer = new PeerStream(_stream, () => _stream.ShutDown = true);
        _writer = new PeerWriter(new GenerationInputs(3, _inputs.Writer, NullLogger.Instance, CancellationToken.None, writes: _turn), peer);
    }

    private int Completions()
    {
        var count = 0;
        while (_inputs.Reader.TryRead(out var input))
        {
            Assert.True(input is Input.WriteCompleted { Generation: 3 }, $"unexpected {input}");
            count++;
        }
        return count;
    }

    /// <summary>From now on the peer's writes wait, until <see cref="Unstall"/> (a send in flight, as to a peer that reads slowly).</summary>
    private void StallWrites() => _stream.Stall = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    private void Unstall()
    {
        var stall = _stream.Stall!;
        _stream.Stall = null;
        stall.SetResult();
    }

    /// <summary>Waits (with a deadline) for the stream to have <paramref name="count"/> writes.</summary>
    private async Task WritesAsync(int count)
    {
        using var patience = new CancellationTokenSource(WsClient.Patience);
        while (_stream.Writes.Count < count)
        {
            Assert.False(patience.IsCancellationRequested, $"{_stream.Writes.Count} writes, not {count}");
            await Task.Yield();
        }
    }

    [Fact]
    public void The_writes_of_one_turn_go_to_the_peer_in_one_send_when_it_ends_and_each_is_done_at_once()
    {
        for (var i = 0; i < 10; i++) _writer.Write(new[] { (byte)i });
        Assert.Equal(10, Completions());
        Assert.Equal(10, _budget.Used);
        Assert.Empty(_stream.Writes);
        _turn.TurnEnded();
        Assert.Equal([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]], _stream.Writes);
        Assert.Equal(0, _budget.Used); // held, they counted; sent, they do not
        _turn.TurnEnded(); // nothing more held: nothing sent
        Assert.Single(_stream.Writes);
    }

    [Fact]
    public async Task While_a_send_is_in_flight_a_write_is_done_only_once_that_send_is_over_and_goes_in_the_next()
    {
        StallWrites();
        _writer.Write("first"u8.ToArray());
        _turn.TurnEnded();
        Assert.Equal(1, Completions());
        _writer.Write("second"u8.ToArray());
        _writer.Write("third"u8.ToArray()); // the core holds back after one; a second in a row waits all the same
        Assert.Equal(0, Completions());
        Unstall();
        await WritesAsync(2);
        Assert.Equal("firstsecondthird", System.Text.Encoding.ASCII.GetString(_stream.All));
        Assert.Equal("secondthird", System.Text.Encoding.ASCII.GetString(_stream.Writes[1]));
        Assert.Equal(1, Completions()); // the owed one, once
    }

    [Fact]
    public void A_turn_that_writes_more_than_64_KiB_sends_without_waiting_for_its_end()
    {
        for (var i = 0; i < 5; i++) _writer.Write(new byte[11_000]);
        Assert.Empty(_stream.Writes);
        _writer.Write(new byte[11_000]);
        Assert.Equal(66_000, Assert.Single(_stream.Writes).Length);
    }

    [Fact]
    public async Task A_large_write_with_nothing_held_goes_as_it_is_then_an_empty_send_and_is_done_once_sent()
    {
        StallWrites();
        _writer.Write(new byte[40_000]);
        Assert.Equal(40_000, Assert.Single(_stream.Writes).Length);
        Assert.Equal(0, Completions());
        Unstall();
        using var patience = new CancellationTokenSource(WsClient.Patience);
        Assert.True(await _inputs.Reader.WaitToReadAsync(patience.Token));
        Assert.Equal(1, Completions());
        // Then an empty send, so the socket no longer holds the core's buffer (a quiet session keeps no payload alive).
        Assert.Equal([40_000, 0], _stream.Writes.Select(w => w.Length));
    }

    [Fact]
    public void FIN_goes_after_the_bytes_held_for_the_turn()
    {
        _writer.Write("last words"u8.ToArray());
        _writer.ShutdownSend();
        Assert.Equal("last words", System.Text.Encoding.ASCII.GetString(_stream.All));
        Assert.True(_stream.ShutDown);
    }

    [Fact]
    public async Task Closing_sends_the_bytes_held_for_the_turn_first()
    {
        _writer.Write("written, then closed"u8.ToArray());
        await _writer.CloseAsync().WaitAsync(WsClient.Patience);
        Assert.Equal("written, then closed", System.Text.Encoding.ASCII.GetString(_stream.All));
        _turn.TurnEnded(); // the turn's end after the close sends nothing more
        Assert.Single(_stream.Writes);
    }

    /// <summary>Review: a close used to end a send in flight, and drop what waited behind it, though the core had heard both done.</summary>
    [Fact]
    public async Task Closing_while_a_send_is_in_flight_waits_for_it_and_sends_what_waited_behind_it()
    {
        StallWrites();
        _writer.Write("first "u8.ToArray());
        _turn.TurnEnded();
        _writer.Write("second"u8.ToArray());
        var closed = _writer.CloseAsync();
        Assert.False(closed.IsCompleted);
        Unstall();
        await closed.WaitAsync(WsClient.Patience);
        Assert.Equal("first second", System.Text.Encoding.ASCII.GetString(_stream.All));
    }

    /// <summary>Review: after a failed send, a wait for the writer to drain (a TLS step's) never ended.</summary>
    [Fact]
    public async Task After_a_failed_send_draining_and_closing_end_at_once_and_the_session_hears_why()
    {
        _stream.ShutDown = true; // every write fails
        _writer.Write("STARTTLS\r\n"u8.ToArray());
        _turn.TurnEnded();
        await _writer.DrainedAsync().WaitAsync(WsClient.Patience);
        await _writer.CloseAsync().WaitAsync(WsClient.Patience);
        var heard = new List<Input>();
        while (_inputs.Reader.TryRead(out var input)) heard.Add(input);
        Assert.Contains(heard, i => i is Input.SocketFailed);
    }

    [Fact]
    public async Task Draining_before_a_handshake_sends_what_is_held_and_waits_for_it()
    {
        StallWrites();
        _writer.Write("STARTTLS\r\n"u8.ToArray());
        var drained = _writer.DrainedAsync();
        Assert.Single(_stream.Writes);
        Assert.False(drained.IsCompleted);
        Unstall();
        await drained.WaitAsync(WsClient.Patience);
    }

    /// <summary>Re-review: an empty write behind a send in flight waited for a completion that never came.</summary>
    [Fact]
    public async Task An_empty_write_behind_a_send_in_flight_is_done_once_that_send_is_over()
    {
        StallWrites();
        _writer.Write("x"u8.ToArray());
        _turn.TurnEnded();
        Assert.Equal(1, Completions());
        _writer.Write(ReadOnlyMemory<byte>.Empty);
        Assert.Equal(0, Completions());
        Unstall();
        using var patience = new CancellationTokenSource(WsClient.Patience);
        Assert.True(await _inputs.Reader.WaitToReadAsync(patience.Token));
        Assert.Equal(1, Completions());
    }

    /// <summary>Re-review: bytes written after a failed send were counted in the server-wide budget and never let go.</summary>
    [Fact]
    public async Task Writes_after_a_failed_send_are_dropped_and_the_budget_is_left_as_it_was()
    {
        _stream.ShutDown = true;
        _writer.Write("lost"u8.ToArray());
        _turn.TurnEnded();
        await _writer.DrainedAsync().WaitAsync(WsClient.Patience);
        _writer.Write("after"u8.ToArray());
        _turn.TurnEnded();
        Assert.Equal(0, _budget.Used);
    }

    [Fact]
    public void The_32nd_input_of_a_turn_sends_what_it_holds_even_with_more_at_hand()
    {
        _writer.Write("held"u8.ToArray());
        for (var i = 1; i < WriteBehind.MaxInputsPerTurn; i++) _turn.InputTaken();
        Assert.Empty(_stream.Writes);
        _turn.InputTaken();
        Assert.Equal("held", System.Text.Encoding.ASCII.GetString(Assert.Single(_stream.Writes)));
    }

    [Fact]
    public async Task Closing_during_a_large_write_sent_as_it_is_waits_for_it()
    {
        StallWrites();
        _writer.Write(new byte[40_000]);
        var closed = _writer.CloseAsync();
        Assert.False(closed.IsCompleted);
        Unstall();
        await closed.WaitAsync(WsClient.Patience);
        Assert.Equal(1, Completions());
    }

    /// <summary>Review: with completions outside the 32, a client queueing thousands of tiny packets held a turn's bytes for as long.</summary>
    [Fact]
    public void The_512th_write_completion_of_a_turn_sends_what_it_holds_too()
    {
        _writer.Write("held"u8.ToArray());
        for (var i = 1; i < WriteBehind.MaxCompletionsPerTurn; i++) _turn.InputTaken(completion: true);
        Assert.Empty(_stream.Writes);
        _turn.InputTaken(completion: true);
        Assert.Equal("held", System.Text.Encoding.ASCII.GetString(Assert.Single(_stream.Writes)));
    }
}
