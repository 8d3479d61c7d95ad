using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Ws2s.Host.Tests;

/// <summary>
/// Attacks on ws2sd's background commands through the files in <c>~/.ws2s</c>: a pid file naming a
/// process that is not this home's server (one whose command line merely says "ws2sd", or another
/// home's server), a pid file naming an address for <c>status</c> to dial, and links where ws2sd writes.
/// </summary>
public sealed class DaemonAttackTests : IAsyncLifetime
{
    private readonly Ws2sdHome _home = new();
    private readonly Ws2sdHome _other = new();
    private readonly List<Process> _foreign = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var process in _foreign)
        {
            if (!process.HasExited) process.Kill();
            await process.WaitForExitAsync();
            process.Dispose();
        }
        await _home.DisposeAsync();
        await _other.DisposeAsync();
    }

    /// <summary>
    /// Starts <c>tail -f ~/.ws2s/ws2sd.pid</c> (a process of this user whose command line contains "ws2sd",
    /// as a user watching the pid file runs) and writes its pid into the pid file.
    /// </summary>
    private async Task<Process> TailOfThePidFileAsync()
    {
        Directory.CreateDirectory(_home.Dot);
        await File.WriteAllTextAsync(_home.PidFile, "");
        var info = new ProcessStartInfo("tail") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var word in new[] { "-f", _home.PidFile }) info.ArgumentList.Add(word);
        var tail = Process.Start(info)!;
        _foreign.Add(tail);
        await File.WriteAllTextAsync(_home.PidFile, $"{tail.Id}\n");
        return tail;
    }

    /// <summary>Starts ws2sd in <paramref name="home"/> (listening on a free loopback port) and returns its pid.</summary>
    private static async Task<int> StartAsync(Ws2sdHome home)
    {
        await home.WriteConfigAsync(Loopback.FreePort());
        var (exit, output) = await home.Ws2sdAsync("start");
        Assert.True(exit == 0, output);
        return int.Parse(File.ReadLines(home.PidFile).First(), System.Globalization.CultureInfo.InvariantCulture);
    }

    [SkippableTheory]
    [InlineData("status", 3)]
    [InlineData("stop", 0)]
    [InlineData("reload", 3)]
    public async Task A_pid_file_naming_a_process_whose_command_line_says_ws2sd_is_stale_and_that_process_is_never_signalled(string command, int expectedExit)
    {
        Requirements.Need("/usr/bin/tail", "coreutils");
        var tail = await TailOfThePidFileAsync();

        var (exit, output) = await _home.Ws2sdAsync(command);

        Assert.True(exit == expectedExit, output);
        Assert.Contains("not running", output);
        Assert.DoesNotContain($"pid {tail.Id}", output);
        Assert.False(tail.HasExited, $"ws2sd {command} signalled tail (pid {tail.Id})");
    }

    [SkippableFact]
    public async Task Start_proceeds_past_a_pid_file_naming_a_process_whose_command_line_says_ws2sd()
    {
        Requirements.Need("/usr/bin/tail", "coreutils");
        var tail = await TailOfThePidFileAsync();
        var port = Loopback.FreePort();
        await _home.WriteConfigAsync(port);

        var (exit, output) = await _home.Ws2sdAsync("start");

        Assert.True(exit == 0, output);
        Assert.Contains("stale pid file", output);
        (exit, output) = await _home.Ws2sdAsync("status");
        Assert.True(exit == 0, output);
        Assert.DoesNotContain($"pid {tail.Id}", output);
        Assert.False(tail.HasExited);
        await using var session = await WsClient.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/"));
    }

    [SkippableFact]
    public async Task A_pid_file_naming_the_ws2sd_of_another_home_is_stale_there_and_that_server_is_never_signalled()
    {
        var other = await StartAsync(_other);
        Directory.CreateDirectory(_home.Dot);
        File.Copy(_other.PidFile, _home.PidFile);

        var (exit, output) = await _home.Ws2sdAsync("status");
        Assert.True(exit == 3, output);
        Assert.Contains("stale", output);
        (exit, output) = await _home.Ws2sdAsync("reload");
        Assert.True(exit == 3, output);
        (exit, output) = await _home.Ws2sdAsync("stop");
        Assert.True(exit == 0, output);
        Assert.DoesNotContain("stopped", output);

        // The other home's server was neither reloaded nor stopped: still running, and its log has no reload.
        (exit, output) = await _other.Ws2sdAsync("status");
        Assert.True(exit == 0, output);
        Assert.Contains($"pid {other}", output);
        Assert.DoesNotContain("SIGHUP", await File.ReadAllTextAsync(_other.Log));
    }

    [SkippableFact]
    public async Task Status_never_dials_an_address_read_from_the_pid_file()
    {
        var pid = await StartAsync(_home);
        // A listener of the test's own on another loopback address: the address a pid file could name.
        using var bait = new TcpListener(IPAddress.Parse("127.0.0.9"), 0);
        bait.Start();
        var baitPort = ((IPEndPoint)bait.LocalEndpoint).Port;
        await File.WriteAllLinesAsync(_home.PidFile, [$"{pid}", $"ws://127.0.0.9:{baitPort}/", $"http://127.0.0.9:{baitPort}/"]);

        var (exit, output) = await _home.Ws2sdAsync("status");

        Assert.True(exit == 0, output);
        Assert.Contains($"ws2sd is running (pid {pid})", output);
        Assert.False(bait.Pending(), "ws2sd status dialled the address in the pid file");
    }

    [SkippableTheory]
    [InlineData("ws2s.log")]
    [InlineData("ws2sd.pid")]
    [InlineData("ws2sd.lock")]
    [InlineData("ws2sd.reload")]
    [InlineData(".ws2s")]
    public async Task Start_refuses_a_link_in_the_ws2s_folder_and_writes_nothing_through_it(string linked)
    {
        var port = Loopback.FreePort();
        await _home.WriteConfigAsync(port);
        // What the link points to: a file of the user's (or the folder ~/.ws2s would be), kept as it was.
        var elsewhere = Path.Combine(_home.Path, "elsewhere");
        Directory.CreateDirectory(elsewhere);
        string target;
        if (linked == ".ws2s")
        {
            File.Copy(_home.Config, Path.Combine(elsewhere, "config.json"));
            Directory.Delete(_home.Dot, recursive: true);
            target = elsewhere;
        }
        else
        {
            target = Path.Combine(elsewhere, "precious.txt");
            await File.WriteAllTextAsync(target, "the user's own file\n");
        }
        File.CreateSymbolicLink(linked == ".ws2s" ? _home.Dot : Path.Combine(_home.Dot, linked), target);
        var before = Snapshot(elsewhere);

        var (exit, output) = await _home.Ws2sdAsync("start");

        Assert.True(exit == 2, output);
        Assert.Contains("symbolic link", output);
        Assert.Equal(before, Snapshot(elsewhere));
        Assert.False(Listening(port), "ws2sd started anyway");
    }

    [SkippableFact]
    public async Task The_background_server_replaces_a_linked_pid_file_instead_of_writing_through_it()
    {
        // The server ws2sd start launches (run --pid-file) with the link planted after start looked.
        Directory.CreateDirectory(_home.Dot);
        var target = Path.Combine(_home.Path, "precious.txt");
        await File.WriteAllTextAsync(target, "the user's own file\n");
        File.CreateSymbolicLink(_home.PidFile, target);

        await using var server = ServerProcess.Start(["run", "--pid-file", _home.PidFile, "--listen:port", "0"], home: _home.Path);
        await server.ListeningUrlAsync();
        var deadline = Stopwatch.StartNew();
        while (new FileInfo(_home.PidFile).LinkTarget is not null && await File.ReadAllTextAsync(target) == "the user's own file\n"
               && deadline.Elapsed < WsClient.Patience)
            await Task.Delay(100); // polling a file another process writes

        Assert.Equal("the user's own file\n", await File.ReadAllTextAsync(target));
        Assert.Null(new FileInfo(_home.PidFile).LinkTarget);
        Assert.Equal($"{server.Process.Id}", File.ReadLines(_home.PidFile).First());
    }

    [SkippableFact]
    public async Task The_background_server_refuses_a_linked_log_file()
    {
        Directory.CreateDirectory(_home.Dot);
        var target = Path.Combine(_home.Path, "precious.txt");
        await File.WriteAllTextAsync(target, "the user's own file\n");
        File.CreateSymbolicLink(_home.Log, target);

        await using var server = ServerProcess.Start(["run", "--log-file", _home.Log, "--listen:port", "0"], home: _home.Path);

        Assert.Equal(2, await server.ExitCodeAsync());
        Assert.Contains(server.Output, line => line.Contains("symbolic link", StringComparison.Ordinal));
        Assert.Equal("the user's own file\n", await File.ReadAllTextAsync(target));
    }

    /// <summary>Every file under <paramref name="folder"/> with its content.</summary>
    private static string Snapshot(string folder) =>
        string.Join("\n", Directory.GetFiles(folder, "*", SearchOption.AllDirectories).Order()
            .Select(f => $"{Path.GetRelativePath(folder, f)}: {File.ReadAllText(f)}"));

    private static bool Listening(int port)
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            probe.Connect(new IPEndPoint(IPAddress.Loopback, port));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
