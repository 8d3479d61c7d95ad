using Microsoft.Extensions.DependencyInjection;
using System.Net.Sockets;
using Ws2s.AspNetCore.Configuration;

namespace Ws2s.Host.Tests;

/// <summary>
/// More attacks on Unix-socket and named destinations (review of issue 22's connectors): odd spellings of
/// the scheme and the path, abstract sockets, a listed folder, wide TCP rules, tunnels to a path, named
/// peers that collide with ws2s's own connectors, and a reload seen by a session that is already open.
/// </summary>
public sealed class UnixSocketReviewAttackTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ws2s-unix-review-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private (Socket Listener, string Path) Listen(string name) => UnixSockets.Listen(_dir, name);


    [Theory]
    [InlineData("UNIX:{path}")]
    [InlineData("Unix:{path}")]
    [InlineData("uNix:{path}")]
    [InlineData(" unix:{path}")]
    [InlineData("unix: {path}")]
    [InlineData("unix:{path} ")]
    [InlineData("unix:{path}\n")]
    [InlineData("unix:{path}\r")]
    [InlineData("unix:{path}\t")]
    [InlineData("unix:{path}\0")]
    [InlineData("unix:\0{path}")]
    [InlineData("\0unix:{path}")]
    [InlineData("\u200Bunix:{path}")]
    [InlineData("un\u00ADix:{path}")]
    [InlineData("unix\u200B:{path}")]
    [InlineData("unix:{path}\u200B")]
    [InlineData("unix:@ok.sock")]
    [InlineData("unix:@{path}")]
    [InlineData("unix:\0ok.sock")]
    [InlineData("unix:{dir}%2Fok.sock")]
    [InlineData("unix:{dir}/ok%2Esock")]
    [InlineData("unix:%2F{pathNoSlash}")]
    [InlineData("unix://{pathNoSlash}")]
    [InlineData("unix:///{pathNoSlash}")]
    [InlineData("unix:{dir}/../{dirName}/ok.sock")]
    [InlineData("unix:{dir}/.//ok.sock")]
    [InlineData("unix:{dir}\\ok.sock")]
    [InlineData("unix:{dir}\uFF0Fok.sock")] // a fullwidth solidus
    [InlineData("unix:{dir}\u2215ok.sock")] // a division slash
    [InlineData("unix:/proc/self/root{path}")]
    [InlineData("unix:/proc/self/cwd/ok.sock")]
    [InlineData("file:{path}")]
    [InlineData("unix_socket:{path}")]
    [InlineData("unix:file://{path}")]
    [InlineData("unix:{path}:80")]
    public async Task No_other_spelling_of_a_listed_path_is_dialled(string spelling)
    {
        var (listener, path) = Listen("ok.sock");
        using var _ = listener;
        await using var host = await Ws2sHost.StartAsync(UnixSockets.Config(["unix:" + path]));
        await using var client = await host.ConnectAsync();
        var asked = spelling.Replace("{pathNoSlash}", path.TrimStart('/')).Replace("{path}", path).Replace("{dirName}", Path.GetFileName(_dir))
            .Replace("{dir}", _dir);
        await client.SendAsync(new { command = "connect", host = asked });
        var answer = await client.ReceiveJsonAsync();
        Assert.False((bool)answer["success"]!, $"{asked}: {answer.ToJsonString()}");
        Assert.True((int)answer["code"]! is 4 or 7, $"{asked}: {answer.ToJsonString()}");
        UnixSockets.NobodyCame(listener);
        // The session goes on: the listed path itself still works.
        await client.SendAsync(new { command = "connect", host = "unix:" + path });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
    }

    [Fact]
    public async Task A_listed_folder_is_not_a_prefix_rule()
    {
        var (listener, path) = Listen("in-folder.sock");
        using var _ = listener;
        await using var host = await Ws2sHost.StartAsync(UnixSockets.Config(["unix:" + _dir]));
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "unix:" + path });
        Assert.Equal(4, (int)(await client.ReceiveJsonAsync())["code"]!);
        UnixSockets.NobodyCame(listener);
    }

    [Theory]
    [InlineData("0.0.0.0/0 ::/0")]
    [InlineData("127.0.0.0/8 localhost *.localhost")]
    [InlineData("0.0.0.0/0:1-65535")]
    public async Task Wide_tcp_rules_and_allowConnectToServerLocal_never_open_a_unix_path(string allow)
    {
        var (listener, path) = Listen("wide.sock");
        using var _ = listener;
        await using var host = await Ws2sHost.StartAsync(UnixSockets.Config(allow.Split(' '), serverLocal: true));
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "unix:" + path });
        var answer = await client.ReceiveJsonAsync();
        Assert.Equal(4, (int)answer["code"]!);
        Assert.Contains("destinations.allow", (string)answer["message"]!);
        UnixSockets.NobodyCame(listener);
    }

    [Fact]
    public async Task An_ssh_tunnel_never_leads_to_a_unix_path_nor_from_one()
    {
        var (listener, path) = Listen("ssh.sock");
        using var _ = listener;
        await using var host = await Ws2sHost.StartAsync(UnixSockets.Config(["unix:" + path], serverLocal: true));
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "unix:" + path, ssh_host = "127.0.0.1", ssh_username = "u", ssh_password = "p" });
        Assert.Equal(7, (int)(await client.ReceiveJsonAsync())["code"]!);
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = 9, ssh_host = "unix:" + path, ssh_username = "u", ssh_password = "p" });
        Assert.Equal(7, (int)(await client.ReceiveJsonAsync())["code"]!);
        UnixSockets.NobodyCame(listener);
    }

    [Fact]
    public async Task Tls_and_starttls_to_a_unix_path_need_a_server_name_and_the_listing()
    {
        var (listener, path) = Listen("tls.sock");
        using var _ = listener;
        await using var host = await Ws2sHost.StartAsync(UnixSockets.Config([], serverLocal: true));
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "unix:" + path, tls = true });
        Assert.Equal(7, (int)(await client.ReceiveJsonAsync())["code"]!);
        await client.SendAsync(new { command = "connect", host = "unix:" + path, tls = true, tlsServerName = "localhost" });
        Assert.Equal(4, (int)(await client.ReceiveJsonAsync())["code"]!);
        UnixSockets.NobodyCame(listener);
    }

    /// <summary>
    /// A named peer whose scheme is one of ws2s's own connectors (<c>tcp:</c>, <c>ssh:</c>) was handed to that
    /// connector, which cast it to its own hop and threw: code 1 and close 1011 for a listed destination, and an
    /// "internal error" in the log. A scheme that a built-in connector owns is not a named peer's.
    /// </summary>
    [Theory]
    [InlineData("tcp:db")]
    [InlineData("ssh:db")]
    [InlineData("udp:db")]
    public async Task A_named_peer_spelt_with_a_built_in_scheme_is_never_handed_to_that_connector(string peer)
    {
        await using var host = await Ws2sHost.StartAsync(UnixSockets.Config([]));
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = peer });
        var answer = await client.ReceiveJsonAsync();
        Assert.True((int)answer["code"]! == 7, answer.ToJsonString());
        Assert.Contains("is not a named peer", (string)answer["message"]!);
        await client.SendAsync(new { command = "ping" });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"ping done"}""");
    }

    [Theory]
    [InlineData("tcp:db")]
    [InlineData("ssh:db")]
    [InlineData("udp:db")]
    public void A_rule_for_a_named_peer_with_a_built_in_scheme_is_a_config_error(string rule)
    {
        var options = new Ws2sOptions();
        options.Destinations.Allow = [rule];
        Assert.Contains(options.Problems(), p => p.Contains(rule));
    }

    [Fact]
    public async Task A_session_open_across_a_reload_that_removes_the_path_is_refused_its_next_connect()
    {
        var (listener, path) = Listen("reload-open.sock");
        using var _ = listener;
        await using var server = await Ws2sHost.StartAsync(UnixSockets.Config(["unix:" + path]));
        await using var client = await server.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "unix:" + path });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
        using var accepted = await listener.AcceptAsync(); // kept open: the peer's close would answer first
        Assert.Empty(server.Services.GetRequiredService<LiveConfiguration>().Take(new Ws2sOptions()).Problems);
        // The reload has returned: the very next connect of this open session is judged by the new rules.
        await client.SendAsync(new { command = "connect", host = "unix:" + path });
        var answer = await client.ReceiveJsonAsync();
        Assert.True((int)answer["code"]! == 4, answer.ToJsonString());
        UnixSockets.NobodyCame(listener);
    }

    [Theory]
    [InlineData("UNIX_SOCKET:{path}")]
    [InlineData("unix_socket: {path}")]
    [InlineData("unix_socket:{dir}/../{dirName}/ok.sock")]
    [InlineData("unix_socket:{path}")] // websockify's spelling itself: not listed, so refused
    public async Task A_token_file_target_is_listed_exactly_or_refused(string target)
    {
        var (listener, path) = Listen("ok.sock");
        using var _ = listener;
        var tokens = Path.Combine(_dir, "tokens");
        var line = target.Replace("{path}", path).Replace("{dirName}", Path.GetFileName(_dir)).Replace("{dir}", _dir);
        await File.WriteAllTextAsync(tokens, $"t: {line}\n");
        // Listed is a different socket in the same folder: the target never reaches ok.sock.
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback.With(o =>
        {
            o.RawTokenFile = tokens;
            o.Destinations.Allow = [$"unix:{_dir}/other.sock", "0.0.0.0/0"];
        }));
        try
        {
            await using var client = await WsClient.ConnectAsync(new Uri(host.Url, "/websockify?token=t"), "http://localhost", "binary");
            var close = await client.ReceiveAsync();
            Assert.Equal(1008, close.CloseStatus);
        }
        catch (System.Net.WebSockets.WebSocketException e) when (e.Message.Contains("'404'"))
        {
            // A line that does not parse is no target: the token is unknown.
        }
        UnixSockets.NobodyCame(listener);
    }
}
