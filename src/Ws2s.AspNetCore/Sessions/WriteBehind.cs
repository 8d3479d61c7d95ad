using Ws2s.AspNetCore.Connectors;

namespace Ws2s.AspNetCore.Sessions;

/// <summary>
/// A session's peer writes held until the end of its turn: when no input waits for its loop, each peer that was written to
/// sends what it took in one send (<see cref="PeerWriter"/>). A turn goes on while the client's next message is on its way:
/// the loop ends it when it would wait and the client reader is not busy, and the reader when it is about to wait.
/// </summary>
/// <remarks><paramref name="budget"/>: the server-wide queue bound, which counts the bytes the writers hold.</remarks>
internal sealed class WriteBehind(QueueBudget? budget = null)
{
    private readonly Lock _gate = new();
    private List<PeerWriter> _waiting = [];

    /// <summary>Inputs taken since the writes last went out: a turn that goes on and on still sends.</summary>
    private int _inputs;

    /// <summary>The writers' own completions among them (one per write taken; their chain is fed by the core's queues).</summary>
    private int _completions;

    /// <summary>A turn sends its writes after this many inputs, the writers' completions aside, even while more are at hand.</summary>
    public const int MaxInputsPerTurn = 32;

    /// <summary>… and after this many of those completions (Wisp's queues may hold 256 streams × 256 packets).</summary>
    public const int MaxCompletionsPerTurn = 512;

    /// <summary>The loop takes an input (<paramref name="completion"/>: a writer's own <c>WriteCompleted</c>); a turn's cap ends it first.</summary>
    public void InputTaken(bool completion = false)
    {
        if (completion ? Interlocked.Increment(ref _completions) >= MaxCompletionsPerTurn : Interlocked.Increment(ref _inputs) >= MaxInputsPerTurn)
            TurnEnded();
    }

    /// <summary>A peer with bytes held for the end of this turn (once per turn).</summary>
    public void Hold(PeerWriter writer)
    {
        lock (_gate) _waiting.Add(writer);
    }

    /// <summary>A writer took (positive) or let go of (negative) bytes: they count in the server-wide queue budget.</summary>
    public void Account(int bytes) => budget?.Add(bytes);

    /// <summary>The turn has ended: every peer written to sends what it holds.</summary>
    public void TurnEnded()
    {
        List<PeerWriter> due;
        lock (_gate)
        {
            (_inputs, _completions) = (0, 0);
            if (_waiting.Count == 0) return;
            (due, _waiting) = (_waiting, []); // the loop and the reader may end a turn at once: each its own list
        }
        foreach (var writer in due) writer.TurnEnded();
    }
}
