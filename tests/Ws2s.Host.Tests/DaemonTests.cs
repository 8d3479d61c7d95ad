using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Ws2s.Host.Tests;

/// <summary>
/// The original's commands on the real ws2sd, as a user types them, with HOME in a temp folder:
/// start, status, restart, reload by editing the file, a bad edit, stop, a stale pid file.
/// </summary>
public sealed class DaemonTests : IAsyncLifetime
{
    private readonly Ws2sdHome _home = new();
    private string Config => _home.Config;
    private string Log => _home.Log;
    private string PidFile => _home.PidFile;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _home.DisposeAsync();

    private Task<(int Exit, string Output)> Ws2sdAsync(params string[] args) => _home.Ws2sdAsync(args);

    private Task WriteConfigAsync(int port, params string[] allow) => _home.WriteConfigAsync(port, allow);

    private Task<int> WaitForLogAsync(string text, int skip = 0) => _home.WaitForLogAsync(text, skip);

    private static async Task<JsonObject> ConnectAsync(WsClient client, int port)
    {
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port });
        return await client.ReceiveJsonAsync();
    }

    [SkippableFact]
    public async Task Start_status_restart_reload_bad_edit_stop_and_a_stale_pid_file_as_a_user_runs_them()
    {
        using var kept = Peer.Echo();
        using var removed = Peer.Echo();
        var port = Loopback.FreePort();
        var url = new Uri($"ws://127.0.0.1:{port}/");
        await WriteConfigAsync(port, $"127.0.0.1:{kept.Port}", $"127.0.0.1:{removed.Port}");

        var (exit, output) = await Ws2sdAsync("start");
        Assert.True(exit == 0, output);
        Assert.Contains($"listening on {url}", output);
        (exit, output) = await Ws2sdAsync("status");
        Assert.True(exit == 0, output);
        Assert.Contains("ws2sd is running", output);
        Assert.Contains("active sessions: 0", output);
        (exit, output) = await Ws2sdAsync("start");
        Assert.Equal(1, exit);
        Assert.Contains("already running", output);

        // A session works; a restart closes it with 1001, and a new one works against the new process.
        await using (var first = await WsClient.ConnectAsync(url))
        {
            await first.EchoThroughAsync(kept.Port, "before restart");
            (exit, output) = await Ws2sdAsync("restart");
            Assert.True(exit == 0, output);
            Assert.Equal(1001, (await first.ReceiveAsync()).CloseStatus);
        }
        await using var session = await WsClient.ConnectAsync(url);
        await session.EchoThroughAsync(removed.Port, "connected to the one that goes");

        // An edit that removes a destination: the open connection keeps relaying, the next connect there is refused.
        var seen = await WaitForLogAsync("ws2s listening on");
        await WriteConfigAsync(port, $"127.0.0.1:{kept.Port}");
        seen = await WaitForLogAsync("config reloaded", seen);
        await session.SendAsync(new { command = "send", data = "still relaying" });
        var echoed = new MemoryStream();
        await session.ExpectAnswerAsync("""{"success":true,"code":0,"message":"send done"}""", echoed);
        await session.ReadDataAsync(echoed, "still relaying".Length);
        // The session takes up the new rules within a second (its next tick): until then a connect may still pass.
        JsonObject answer;
        var deadline = Stopwatch.StartNew();
        do answer = await ConnectAsync(session, removed.Port);
        while ((int)answer["code"]! == 0 && deadline.Elapsed < WsClient.Patience);
        Assert.Equal(4, (int)answer["code"]!);
        Assert.Equal(0, (int)(await ConnectAsync(session, kept.Port))["code"]!);

        // A bad edit (that would also allow the removed one again) is refused with the key named; the old rules stay.
        await File.WriteAllTextAsync(Config, Ws2sdHome.ConfigFor(port, $"127.0.0.1:{kept.Port}", $"127.0.0.1:{removed.Port}")
            .With(o => o.Origins = ["not an origin"]));
        seen = await WaitForLogAsync("origins[0]", seen);
        Assert.Contains("the previous configuration stays in force", string.Join("\n", File.ReadAllLines(Log).Skip(seen - 2)));
        Assert.Equal(4, (int)(await ConnectAsync(session, removed.Port))["code"]!);

        (exit, output) = await Ws2sdAsync("stop");
        Assert.True(exit == 0, output);
        Assert.Equal(1001, (await session.ReceiveAsync()).CloseStatus);
        (exit, output) = await Ws2sdAsync("status");
        Assert.Equal(3, exit);
        Assert.False(File.Exists(PidFile));

        // A stale pid file (a pid that is not ws2sd) is detected, not trusted: start still works.
        await File.WriteAllTextAsync(PidFile, $"{Environment.ProcessId}\n");
        (exit, output) = await Ws2sdAsync("status");
        Assert.Equal(3, exit);
        Assert.Contains("stale", output);
        await WriteConfigAsync(port, $"127.0.0.1:{kept.Port}");
        (exit, output) = await Ws2sdAsync("start");
        Assert.True(exit == 0, output);
        Assert.Contains("stale pid file", output);
        await using var after = await WsClient.ConnectAsync(url);
        await after.EchoThroughAsync(kept.Port, "after a stale pid file");
    }

    [SkippableFact]
    public async Task Start_with_a_bad_config_exits_2_and_says_why_and_leaves_no_pid_file()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Config)!);
        await File.WriteAllTextAsync(Config, """{"listen":{"host":"not-an-address","port":3613}}""");
        // Said on the terminal before anything starts.
        var (exit, output) = await Ws2sdAsync("start");
        Assert.Equal(2, exit);
        Assert.Contains("config error: listen.host 'not-an-address' is not an IP address", output);
        Assert.False(File.Exists(PidFile));
        (exit, _) = await Ws2sdAsync("status");
        Assert.Equal(3, exit);

        // What only the server meets (its port taken) is read back from its log.
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        await File.WriteAllTextAsync(Config, TestConfig.Defaults.Serving(s => s.Listen.Port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port));
        (exit, output) = await Ws2sdAsync("start");
        Assert.Equal(2, exit);
        Assert.Contains("could not start", output);
        Assert.Contains("cannot listen", output);
        Assert.False(File.Exists(PidFile));
    }

    [SkippableFact]
    public async Task Service_refuses_clearly_without_systemd_and_dry_run_prints_the_unit()
    {
        var (exit, output) = await Ws2sdAsync("service", "--dry-run");
        Assert.Equal(0, exit);
        Assert.Contains("ExecStart=", output);
        Assert.Contains(" run", output);
        if (Directory.Exists("/run/systemd/system")) return; // a machine with systemd: not refused, and not installed by a test
        (exit, output) = await Ws2sdAsync("service");
        Assert.Equal(2, exit);
        // A checkout under /tmp (a clean clone there, as root) is refused first, for the system service's private /tmp.
        var underTmp = AppContext.BaseDirectory.StartsWith("/tmp/", StringComparison.Ordinal) && Environment.UserName == "root";
        Assert.Contains(underTmp ? "which the service does not see" : "systemd is not running on this machine", output);
    }

    [Fact]
    public async Task Help_lists_the_originals_commands_and_ours()
    {
        var (exit, output) = await Ws2sdAsync("help");
        Assert.Equal(0, exit);
        foreach (var command in new[] { "ws2sd start", "ws2sd stop", "ws2sd restart", "ws2sd status", "ws2sd service", "ws2sd reload", "ws2sd [run]" })
            Assert.Contains(command, output);
    }
}

public sealed class RotatingLogTests
{
    [Fact]
    public void The_log_rotates_by_size_and_keeps_three_old_files()
    {
        var directory = Directory.CreateTempSubdirectory("ws2s-log-").FullName;
        var path = Path.Combine(directory, "ws2s.log");
        using (var log = new RotatingLog(path, maxBytes: 1000))
            for (var i = 0; i < 100; i++) log.WriteLine($"line {i:D3} " + new string('x', 90));
        var files = Directory.GetFiles(directory).Select(f => Path.GetFileName(f)).Order().ToArray();
        Assert.Equal<string[]>(["ws2s.log", "ws2s.log.1", "ws2s.log.2", "ws2s.log.3"], files);
        Assert.All(files, f => Assert.True(new FileInfo(Path.Combine(directory, f)).Length <= 1100));
        // The newest lines are in the current file, the oldest kept ones in .3; older ones are gone.
        Assert.Contains("line 099", File.ReadAllText(path) + File.ReadAllText(path + ".1"));
        Assert.DoesNotContain("line 000", string.Concat(files.Select(f => File.ReadAllText(Path.Combine(directory, f)))));
        Directory.Delete(directory, recursive: true);
    }

    [Fact]
    public void The_log_refuses_a_linked_file_and_rotation_never_writes_through_linked_old_files()
    {
        var directory = Directory.CreateTempSubdirectory("ws2s-log-").FullName;
        var target = Path.Combine(directory, "precious.txt");
        File.WriteAllText(target, "the user's own file\n");
        var path = Path.Combine(directory, "ws2s.log");
        File.CreateSymbolicLink(path, target);

        var refused = Assert.Throws<LinkRefusedException>(() => new RotatingLog(path));
        Assert.Contains("symbolic link", refused.Message);

        // Old files that are links to the user's file: rotation moves or replaces the links, never writes the file.
        File.Delete(path);
        for (var i = 1; i <= RotatingLog.Kept; i++) File.CreateSymbolicLink($"{path}.{i}", target);
        using (var log = new RotatingLog(path, maxBytes: 1000))
            for (var i = 0; i < 100; i++) log.WriteLine($"line {i:D3} " + new string('x', 90));
        Assert.Equal("the user's own file\n", File.ReadAllText(target));
        Assert.All(Directory.GetFiles(directory, "ws2s.log*"), f => Assert.Null(new FileInfo(f).LinkTarget));
        Directory.Delete(directory, recursive: true);
    }
}
