using System.Threading.Channels;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Sessions;

/// <summary>
/// Hands one generation's inputs to its session until the generation is closed, and runs its tasks so
/// that a failure nobody expected is logged once and reaches the session as <c>RunnerFault</c>.
/// </summary>
internal sealed class GenerationInputs(long generation, ChannelWriter<Input> inputs, ILogger log, CancellationToken closed)
{
    public long Generation => generation;

    /// <summary>Hands an input to the session; false once this generation or the session is finished.</summary>
    public async ValueTask<bool> PostAsync(Input input)
    {
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

    /// <summary>Waits until the session has room for an input (false once the generation or the session is finished).</summary>
    public async ValueTask<bool> RoomAsync()
    {
        try
        {
            return await inputs.WaitToWriteAsync(closed);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

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
            log.LogError(e, "connection {Generation} failed unexpectedly", generation);
            await PostAsync(Input.NewRunnerFault("the server hit an internal error (it is in the server's log)"));
        }
    }
}
