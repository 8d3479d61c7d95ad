using System.Diagnostics;

namespace Ws2s.Host.Tests;

/// <summary>A command run to its end: its exit code and what it printed on each stream.</summary>
public sealed record Command(int Exit, string Output, string Errors)
{
    /// <summary>Both streams, for a failure message.</summary>
    public string Printed => Output + Errors;

    /// <param name="environment">Variables to set (a null value removes one).</param>
    public static async Task<Command> RunAsync(string file, IEnumerable<string> args, string? workingDirectory = null,
        IReadOnlyDictionary<string, string?>? environment = null, TimeSpan? patience = null)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args) info.ArgumentList.Add(arg);
        if (workingDirectory is not null) info.WorkingDirectory = workingDirectory;
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null) info.Environment.Remove(name);
            else info.Environment[name] = value;
        }
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync(new CancellationTokenSource(patience ?? TimeSpan.FromMinutes(2)).Token);
        return new Command(process.ExitCode, await output, await errors);
    }
}
