using Microsoft.Extensions.DependencyInjection;
using System.Net.Sockets;
using Ws2s.AspNetCore.Configuration;

namespace Ws2s.Host.Tests;

/// <summary>
/// Attacks on Unix-socket destinations (docs/security.md): a client may reach a Unix socket only at a
/// path the operator listed exactly in <c>destinations.allow</c> as <c>"unix:/abs/path"</c>; every other
/// spelling is refused with code 4 in words that name the key, and nothing is dialled.
/// </summary>
public sealed class UnixSocketAttackTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ws2s-unix-attack-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private (Socket Listener, string Path) Listen(string name) => UnixSockets.Listen(_dir, name);


    private static async Task<string> RefusalOfAsync(WsClient client, string host, int code = 4)
    {
        await client.SendAsync(new { command = "connect", host });
        var answer = await client.ReceiveJsonAsync();
        Assert.True((int)answer["code"]! == code, $"expected code {code} for {host}, got {answer.ToJsonString()}");
        return (string)answer["message"]!;
    }

    [Fact]
    public async Task A_unix_socket_is_refused_by_default_even_with_allowConnectToServerLocal()
    {
        var (listener, path) = Listen("app.sock");
        using var _ = listener;
        await using var host = await Ws2sHost.StartAsync(UnixSockets.Config([], serverLocal: true));
        await using var client = await host.ConnectAsync();
        var message = await RefusalOfAsync(client, "unix:" + path);
        Assert.Contains("destinations.allow", message);
        Assert.Contains($"\"unix:{path}\"", message);
        UnixSockets.NobodyCame(listener);
    }

    [Theory]
    // Spellings that are not a plain absolute path: a bad request (7) saying so, never a dial.
    [InlineData("{dir}/sub/../ok.sock", 7)] // a dot-dot walk that lands on the listed path
    [InlineData("{dir}/./ok.sock", 7)]      // a dot segment
    [InlineData("{dir}//ok.sock", 7)]       // an empty segment
    [InlineData("{dir}/ok.sock/", 7)]       // a trailing slash
    // Plain paths that are not the one listed: refused by policy (4).
    [InlineData("{dir}/ok.sockX", 4)]       // a longer name
    [InlineData("{dir}/OK.sock", 4)]        // another case: paths are case-sensitive
    [InlineData("{dir}/sub/ok.sock", 4)]    // the same name elsewhere
    public async Task Only_the_path_listed_exactly_is_reachable(string spelling, int code)
    {
        var (listener, path) = Listen("ok.sock");
        using var _ = listener;
        Directory.CreateDirectory(Path.Combine(_dir, "sub"));
        await using var host = await Ws2sHost.StartAsync(UnixSockets.Config(["unix:" + path]));
        await using var client = await host.ConnectAsync();
        var asked = spelling.Replace("{dir}", _dir);
        Assert.NotEqual(path, asked);
        var message = await RefusalOfAsync(client, "unix:" + asked, code);
        Assert.Contains(code == 4 ? "destinations.allow" : "plain absolute path", message);
        UnixSockets.NobodyCame(listener);
    }

    [Theory]
    [InlineData("unix:relative.sock")]
    [InlineData("unix:")]
    [InlineData("unix:~/x.sock")]
    public async Task Relative_and_empty_paths_are_never_reachable(string host)
    {
        await using var server = await Ws2sHost.StartAsync(UnixSockets.Config(["unix:/run/x.sock"]));
        await using var client = await server.ConnectAsync();
        await client.SendAsync(new { command = "connect", host });
        var answer = await client.ReceiveJsonAsync();
        // Not a path at all: a bad request (7) in words; never a dial.
        Assert.Equal(7, (int)answer["code"]!);
        Assert.Contains("plain absolute path", (string)answer["message"]!);
    }

    [Fact]
    public async Task A_nul_in_the_path_is_a_bad_request_not_a_shorter_path()
    {
        var (listener, path) = Listen("nul.sock");
        using var _ = listener;
        await using var server = await Ws2sHost.StartAsync(UnixSockets.Config(["unix:" + path]));
        await using var client = await server.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "unix:" + path + "\0.evil" });
        var answer = await client.ReceiveJsonAsync();
        Assert.Equal(7, (int)answer["code"]!);
        UnixSockets.NobodyCame(listener);
    }

    [Fact]
    public async Task A_deny_rule_wins_over_the_allow_rule()
    {
        var (listener, path) = Listen("denied.sock");
        using var _ = listener;
        await using var server = await Ws2sHost.StartAsync(
            TestConfig.Defaults.With(o =>
            {
                o.Destinations.Allow = ["unix:" + path];
                o.Destinations.Deny = ["unix:" + path];
            }));
        await using var client = await server.ConnectAsync();
        Assert.Contains("deny rule unix:" + path, await RefusalOfAsync(client, "unix:" + path));
        UnixSockets.NobodyCame(listener);
    }

    [Fact]
    public async Task A_path_removed_by_a_reload_is_refused_from_then_on()
    {
        var (listener, path) = Listen("reloaded.sock");
        using var _ = listener;
        await using var server = await Ws2sHost.StartAsync(UnixSockets.Config(["unix:" + path]));
        await using (var client = await server.ConnectAsync())
        {
            await client.SendAsync(new { command = "connect", host = "unix:" + path });
            await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
            using var accepted = await listener.AcceptAsync();
        }
        // Options that no longer list the path, taken up as a reload takes them (validated, snapshot swapped).
        Assert.Empty(server.Services.GetRequiredService<LiveConfiguration>().Take(new Ws2sOptions()).Problems);
        await using var after = await server.ConnectAsync();
        Assert.Contains("destinations.allow", await RefusalOfAsync(after, "unix:" + path));
        UnixSockets.NobodyCame(listener);
    }

    [Fact]
    public async Task A_symbolic_link_at_a_listed_path_is_not_followed()
    {
        var (listener, target) = Listen("real.sock");
        using var _ = listener;
        var link = Path.Combine(_dir, "link.sock");
        File.CreateSymbolicLink(link, target);
        await using var server = await Ws2sHost.StartAsync(UnixSockets.Config(["unix:" + link]));
        await using var client = await server.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "unix:" + link });
        var answer = await client.ReceiveJsonAsync();
        Assert.Equal(2, (int)answer["code"]!);
        Assert.Contains("symbolic link", (string)answer["message"]!);
        UnixSockets.NobodyCame(listener);
    }
}
