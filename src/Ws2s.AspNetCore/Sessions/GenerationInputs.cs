using System.Threading.Channels;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Sessions;

/// <summary>
/// Hands one generation's inputs to its session until the generation is closed, and runs its tasks so
/// that a failure nobody expected is logged once and reaches the session as <c>RunnerFault</c>.
/// </summary>
/// <remarks>
/// <paramref name="reads"/>: the session's read tickets, one per peer read it may hold unprocessed (a Wisp connection's streams
/// share them); null: reads wait only for room in the channel. <paramref name="writes"/>: where peer writes wait for the end of the
/// session's turn (see <see cref="Connectors.PeerWriter"/>); null: each is sent at once.
/// </remarks>
internal sealed class GenerationInputs(long generation, ChannelWriter<Input> inputs, ILogger log, CancellationToken closed, SessionReads? reads = null,
    WriteBehind? writes = null)
{
    public long Generation => generation;

    public WriteBehind? Writes => writes;

    /// <summary>Hands an input to the session; false once this generation or the session is finished.</summary>
    public async ValueTask<bool> PostAsync(Input input)
    {
        if (closed.IsCancellationRequested) return false;
        try
        {
            await inputs.WriteAsync(input, closed);
            return true;
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
            return false;
        }
    }

    /// <summary>
    /// Waits until the session may take one more peer read: a read ticket (given back by the session once it has relayed
    /// the read, or by <see cref="GiveBack"/> when nothing was read), else room in the channel. False once the generation
    /// or the session is finished.
    /// </summary>
    public async ValueTask<bool> RoomAsync()
    {
        if (closed.IsCancellationRequested) return false; // closed: no exception to throw and catch
        try
        {
            if (reads is null) return await inputs.WaitToWriteAsync(closed);
            await reads.TakeAsync(closed);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>A read ticket taken by <see cref="RoomAsync"/> that no <c>Received</c> will carry to the session (the peer ended, or failed).</summary>
    public void GiveBack() => reads?.GiveBack();

    /// <summary>
    /// Runs one of the generation's tasks. Each handles the failures it expects and reports them as
    /// inputs; anything else is a bug of ours: logged once, and the session ends with code 1.
    /// </summary>
    public async void Run(Task task)
    {
        try
        {
            await task;
        }
        catch (Exception e)
        {
            await FaultAsync(e);
        }
    }

    /// <summary>A failure nobody expected in one of the generation's tasks (a bug of ours): logged once; the session ends with code 1.</summary>
    public async Task FaultAsync(Exception e)
    {
        log.LogError(e, "connection {Generation} failed unexpectedly", generation);
        await PostAsync(Input.NewRunnerFault("the server hit an internal error (it is in the server's log)"));
    }
}
