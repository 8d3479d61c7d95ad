using System.Net.WebSockets;

namespace Ws2s.Host.Tests;

/// <summary>The server as a user runs it: a separate process, its config file, its exit codes and signals.</summary>
public sealed class ProcessTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("ws2s-home-").FullName;

    public void Dispose() => Directory.Delete(_home, recursive: true);

    private ServerProcess Start(params string[] args) => ServerProcess.Start(args, home: _home);

    [Fact]
    public async Task First_run_writes_the_default_config_file_and_listens()
    {
        await using var server = Start("--listen:port", "0");
        var url = await server.ListeningUrlAsync();
        Assert.Equal("ws", url.Scheme);
        Assert.Equal("127.0.0.1", url.Host);
        var config = await File.ReadAllTextAsync(Path.Combine(_home, ".ws2s", "config.json"));
        Assert.Equal("""{"listen":{"host":"127.0.0.1","port":3613},"allowConnectToServerLocal":false}""", config.Trim());
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
        await using var server = Start("--config", config);
        Assert.Equal(2, await server.ExitCodeAsync());
        var output = string.Join("\n", server.Output);
        Assert.Contains("config error", output);
        Assert.Contains(mentioned, output);
        Assert.DoesNotContain("   at ", output);
    }

    [Fact]
    public async Task The_WS2S_CONFIG_variable_and_command_line_overrides_are_honoured()
    {
        var config = Path.Combine(_home, "other.json");
        await File.WriteAllTextAsync(config, """{"listen":{"host":"127.0.0.1","port":1}}""");
        await using var server = ServerProcess.Start(["--listen:port", "0"], home: _home, configVariable: config);
        var url = await server.ListeningUrlAsync();
        Assert.NotEqual(1, url.Port);
        Assert.Contains(server.Output, line => line.Contains($"(config: {config})"));
    }

    [Fact]
    public async Task SIGTERM_closes_every_client_with_1001_and_exits_cleanly()
    {
        await using var server = Start("--listen:port", "0");
        var url = await server.ListeningUrlAsync();
        await using var client = await WsClient.ConnectAsync(url);
        await client.SendAsync(new { command = "ping" });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"ping done"}""");

        await server.TerminateAsync();

        var close = await client.ReceiveAsync();
        Assert.Equal(WebSocketMessageType.Close, close.Type);
        Assert.Equal(1001, close.CloseStatus);
        Assert.Equal(0, await server.ExitCodeAsync());
    }
}
