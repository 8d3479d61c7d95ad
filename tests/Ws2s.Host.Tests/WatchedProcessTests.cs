namespace Ws2s.Host.Tests;

/// <summary>
/// The helpers that wait for a child's line judge "it exited without printing it" by the end of its output,
/// not by how long the last lines usually take to arrive (200 ms was a guess a loaded CI machine can miss).
/// </summary>
public sealed class WatchedProcessTests
{
    [Fact]
    public async Task A_line_that_arrives_after_the_process_exited_is_still_found()
    {
        // The shell exits at once; what it started prints later (a slow last line), into the same output.
        await using var process = WatchedProcess.Start("sh", ["-c", "(sleep 1.5; echo late line) & exit 0"]);
        Assert.Equal("late line", await process.WaitForLineAsync(l => l == "late line"));
    }

    [Fact]
    public async Task A_line_never_printed_fails_once_the_output_has_ended()
    {
        await using var process = WatchedProcess.Start("sh", ["-c", "echo other"]);
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => process.WaitForLineAsync(l => l == "never"));
        Assert.Contains("other", error.Message);
    }
}
