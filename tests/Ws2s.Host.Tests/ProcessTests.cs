using System.Diagnostics;
using System.Net.WebSockets;

namespace Ws2s.Host.Tests;

/// <summary>The server as a user runs it: a separate process, its config file, its exit codes and signals.</summary>
public sealed class ProcessTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("ws2s-home-").FullName;

    public void Dispose() => Directory.Delete(_home, recursive: true);

    private Process Start(params string[] args) => Start(args, configVariable: null);

    private Process Start(string[] args, string? configVariable)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "ws2sd.dll"));
        foreach (var arg in args) info.ArgumentList.Add(arg);
        info.Environment["HOME"] = _home;
        if (configVariable is null) info.Environment.Remove("WS2S_CONFIG");
        else info.Environment["WS2S_CONFIG"] = configVariable;
        return Process.Start(info)!;
    }

    /// <summary>Waits for the startup line and returns the ws:// URL it names.</summary>
    private static async Task<Uri> ListeningUrlAsync(Process process)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            if (line.StartsWith("ws2s listening on ", StringComparison.Ordinal))
                return new Uri(line["ws2s listening on ".Length..].Split(' ')[0]);
        }
        throw new InvalidOperationException("the server exited without saying where it listens: " + await process.StandardError.ReadToEndAsync());
    }

    private static async Task<int> ExitCodeAsync(Process process)
    {
        await process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
        return process.ExitCode;
    }

    [Fact]
    public async Task First_run_writes_the_default_config_file_and_listens()
    {
        using var process = Start("--listen:port", "0");
        var url = await ListeningUrlAsync(process);
        Assert.Equal("ws", url.Scheme);
        Assert.Equal("127.0.0.1", url.Host);
        var config = await File.ReadAllTextAsync(Path.Combine(_home, ".ws2s", "config.json"));
        Assert.Equal("""{"listen":{"host":"127.0.0.1","port":3613},"allowConnectToServerLocal":false}""", config.Trim());
        process.Kill();
    }

    [Theory]
    [InlineData("{not json", "is not valid JSON")]
    [InlineData("""{"listen":{"port":70000}}""", "listen.port 70000")]
    [InlineData("""{"listen":{"host":"example.com"}}""", "listen.host 'example.com'")]
    [InlineData("""{"listen":{"port":"abc"}}""", "abc")]
    [InlineData("""{"limits":{"connectTimeoutSeconds":0}}""", "limits.connectTimeoutSeconds")]
    [InlineData("""{"destinations":{"deny":["10.0.0.0/33"]}}""", "destinations.deny[0]")]
    [InlineData("""{"origins":["not an origin"]}""", "origins[0]")]
    public async Task A_bad_config_file_is_a_clear_message_and_exit_code_2(string content, string mentioned)
    {
        var config = Path.Combine(_home, "bad.json");
        await File.WriteAllTextAsync(config, content);
        using var process = Start("--config", config);
        var stderr = await process.StandardError.ReadToEndAsync();
        Assert.Equal(2, await ExitCodeAsync(process));
        Assert.Contains("config error", stderr);
        Assert.Contains(mentioned, stderr);
        Assert.DoesNotContain("   at ", stderr);
    }

    [Fact]
    public async Task The_WS2S_CONFIG_variable_and_command_line_overrides_are_honoured()
    {
        var config = Path.Combine(_home, "other.json");
        await File.WriteAllTextAsync(config, """{"listen":{"host":"127.0.0.1","port":1}}""");
        using var process = Start(["--listen:port", "0"], configVariable: config);
        var line = await process.StandardOutput.ReadLineAsync();
        Assert.Contains(config, line);
        Assert.DoesNotContain(":1/", line);
        process.Kill();
    }

    [Fact]
    public async Task SIGTERM_closes_every_client_with_1001_and_exits_cleanly()
    {
        using var process = Start("--listen:port", "0");
        var url = await ListeningUrlAsync(process);
        await using var client = await WsClient.ConnectAsync(url);
        await client.SendAsync(new { command = "ping" });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"ping done"}""");

        using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString()])) await kill.WaitForExitAsync();

        var close = await client.ReceiveAsync();
        Assert.Equal(WebSocketMessageType.Close, close.Type);
        Assert.Equal(1001, close.CloseStatus);
        Assert.Equal(0, await ExitCodeAsync(process));
    }
}
