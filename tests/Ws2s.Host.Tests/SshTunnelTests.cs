using System.Security.Cryptography;

namespace Ws2s.Host.Tests;

/// <summary>Connects through a real OpenSSH sshd: bytes both ways, and every way it can fail (code 6).</summary>
public sealed class SshTunnelTests : IAsyncLifetime
{
    private SshServer _sshd = null!;
    private string _knownHosts = null!;

    public async Task InitializeAsync()
    {
        _sshd = await SshServer.StartAsync();
        _knownHosts = Path.GetTempFileName();
        await File.WriteAllTextAsync(_knownHosts, "# test\n" + _sshd.KnownHostsLine + "\n");
    }

    public async Task DisposeAsync()
    {
        if (_sshd is not null) await _sshd.DisposeAsync();
        if (_knownHosts is not null) File.Delete(_knownHosts);
    }

    private static Task<Ws2sHost> StartHostAsync(string knownHosts) => Ws2sHost.StartAsync(TestConfig.Loopback.With(o => o.Ssh.KnownHosts = knownHosts));

    /// <summary>A connect to 127.0.0.1:<paramref name="port"/> as seen from <paramref name="sshd"/>, logging in with <paramref name="login"/>.</summary>
    private static Dictionary<string, object> Through(SshServer sshd, int port, params (string Field, string Value)[] login)
    {
        var request = new Dictionary<string, object>
        {
            ["command"] = "connect", ["host"] = "127.0.0.1", ["port"] = port,
            ["ssh_host"] = "127.0.0.1", ["ssh_port"] = sshd.Port, ["ssh_username"] = sshd.User,
        };
        foreach (var (field, value) in login) request[field] = value;
        return request;
    }

    /// <summary>A session tunnelled to 127.0.0.1:<paramref name="port"/> through the sshd with the Ed25519 key, connected.</summary>
    private async Task<WsClient> TunnelAsync(Ws2sHost host, int port)
    {
        var client = await host.ConnectAsync();
        await client.SendAsync(Through(_sshd, port, ("ssh_private_key", _sshd.Ed25519Key)));
        await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
        return client;
    }

    [SkippableFact]
    public async Task Tls_runs_end_to_end_through_the_tunnel_to_a_real_redis_over_tls()
    {
        using var pki = new TestPki();
        await using var redis = await RedisServer.StartAsync(pki);
        await using var host = await Ws2sHost.StartAsync(
            TestConfig.Loopback.With(o =>
            {
                o.Ssh.KnownHosts = _knownHosts;
                o.Tls.TrustedCertificates = [pki.CaFile];
            }));
        await using var client = await host.ConnectAsync();
        var connect = Through(_sshd, redis.Port, ("ssh_private_key", _sshd.Ed25519Key));
        connect["tls"] = true;
        connect["tlsServerName"] = "redis.test";
        await client.SendAsync(connect);
        await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
        await client.SendAsync(new { command = "send", data = "PING\r\n" });
        var reply = new MemoryStream();
        await client.ExpectAnswerAsync("""{"success":true,"code":0,"message":"send done"}""", reply);
        await client.ReadDataAsync(reply, "+PONG\r\n".Length);
        Assert.Equal("+PONG\r\n", System.Text.Encoding.ASCII.GetString(reply.ToArray()));
    }

    [SkippableTheory]
    [InlineData("127.0.0.0/8:PORT", "localhost")] // the SSH server resolves the name to a required address
    [InlineData("127.0.0.0/8:PORT", "127.1")]
    [InlineData("127.0.0.0/8:PORT", "elsewhere.test")] // an address ws2s cannot know: fail closed
    [InlineData("redis.test:PORT", "REDIS.test.")]
    public async Task A_tunnel_to_a_destination_that_requires_tls_is_refused_without_it(string rule, string target)
    {
        using var echo = Peer.Echo();
        await using var host = await Ws2sHost.StartAsync(
            TestConfig.Loopback.With(o =>
            {
                o.Ssh.KnownHosts = _knownHosts;
                o.Tls.Required = [rule.Replace("PORT", echo.Port.ToString())];
            }));
        await using var client = await host.ConnectAsync();
        var connect = Through(_sshd, echo.Port, ("ssh_private_key", _sshd.Ed25519Key));
        connect["host"] = target;
        await client.SendAsync(connect);
        var answer = await client.ReceiveJsonAsync();
        Assert.True((int)answer["code"]! == 4 && ((string)answer["message"]!).Contains("tls.required"), $"{target}: {answer.ToJsonString()}");
    }

    [SkippableFact]
    public async Task Bytes_go_both_ways_through_the_tunnel_intact_with_an_Ed25519_key()
    {
        using var echo = Peer.Echo();
        await using var host = await StartHostAsync(_knownHosts);
        await using var client = await TunnelAsync(host, echo.Port);

        var payload = RandomNumberGenerator.GetBytes(512 * 1024);
        for (var at = 0; at < payload.Length; at += 64 * 1024)
            await client.SendAsync(new { command = "sendb", data = Convert.ToBase64String(payload, at, 64 * 1024) });
        var received = new MemoryStream();
        var answers = 0;
        while (received.Length < payload.Length || answers < 8)
        {
            var json = await client.ReceiveJsonAsync();
            if ((int)json["code"]! == -1) received.Write(Convert.FromBase64String((string)json["data"]!));
            else { Assert.Equal("sendb done", (string)json["message"]!); answers++; }
        }
        Assert.Equal(payload, received.ToArray());
    }

    [SkippableFact]
    public async Task An_RSA_PEM_key_with_a_passphrase_logs_in()
    {
        using var echo = Peer.Echo();
        await using var host = await StartHostAsync(_knownHosts);
        await using var client = await host.ConnectAsync();
        await client.SendAsync(Through(_sshd, echo.Port, ("ssh_private_key", _sshd.RsaKey), ("ssh_private_key_password", SshServer.RsaPassphrase)));
        await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
    }

    [SkippableFact]
    public async Task A_wrong_password_or_key_is_code_6_and_the_secret_is_nowhere_in_the_answer()
    {
        using var echo = Peer.Echo();
        await using var host = await StartHostAsync(_knownHosts);
        await using var client = await host.ConnectAsync();
        var failed = $$"""{"success":false,"code":6,"message":"failed to open ssh tunnel: authentication failed for user {{_sshd.User}} (wrong password or key)"}""";
        await client.SendAsync(Through(_sshd, echo.Port, ("ssh_password", "hunter2-wrong")));
        await client.ExpectAsync(failed);
        await client.SendAsync(Through(_sshd, echo.Port, ("ssh_private_key", _sshd.StrangerKey)));
        await client.ExpectAsync(failed);
    }

    [SkippableFact]
    public async Task An_unknown_host_key_is_refused_with_code_6()
    {
        using var echo = Peer.Echo();
        var empty = Path.GetTempFileName();
        try
        {
            await using var host = await StartHostAsync(empty);
            await using var client = await host.ConnectAsync();
            await client.SendAsync(Through(_sshd, echo.Port, ("ssh_private_key", _sshd.Ed25519Key)));
            var answer = await client.ReceiveJsonAsync();
            Assert.Equal(6, (int)answer["code"]!);
            Assert.Contains("is not in ssh.knownHosts", (string)answer["message"]!);
        }
        finally
        {
            File.Delete(empty);
        }
    }

    [SkippableFact]
    public async Task A_target_the_ssh_server_refuses_ends_the_connection()
    {
        using var allowed = Peer.Echo();
        using var forbidden = Peer.Echo();
        await using var strict = await SshServer.StartAsync(permitOpen: $"127.0.0.1:{allowed.Port}");
        var knownHosts = Path.GetTempFileName();
        await File.WriteAllTextAsync(knownHosts, strict.KnownHostsLine + "\n");
        try
        {
            await using var host = await StartHostAsync(knownHosts);
            await using var client = await host.ConnectAsync();
            await client.SendAsync(Through(strict, forbidden.Port, ("ssh_private_key", strict.Ed25519Key)));
            await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
            var closed = await client.ReceiveJsonAsync();
            Assert.Equal(5, (int)closed["code"]!);
        }
        finally
        {
            File.Delete(knownHosts);
        }
    }

    /// <summary>This process's established TCP connections to the sshd.</summary>
    private int ConnectionsToSshd() =>
        System.Net.NetworkInformation.IPGlobalProperties.GetIPGlobalProperties().GetActiveTcpConnections()
            .Count(c => c.RemoteEndPoint.Port == _sshd.Port && c.State == System.Net.NetworkInformation.TcpState.Established);

    [SkippableFact]
    public async Task Tunnels_over_the_same_login_share_one_SSH_session_which_closes_with_the_last()
    {
        using var echo = Peer.Echo();
        await using var host = await StartHostAsync(_knownHosts);
        var before = ConnectionsToSshd();
        var clients = new List<WsClient>();
        for (var i = 0; i < 3; i++)
        {
            clients.Add(await TunnelAsync(host, echo.Port));
        }
        Assert.Equal(before + 1, ConnectionsToSshd());

        // Another login (an RSA key) is another SSH login.
        await using (var other = await host.ConnectAsync())
        {
            await other.SendAsync(Through(_sshd, echo.Port, ("ssh_private_key", _sshd.RsaKey), ("ssh_private_key_password", SshServer.RsaPassphrase)));
            await other.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
            Assert.Equal(before + 2, ConnectionsToSshd());
        }

        foreach (var client in clients)
        {
            await client.SendAsync(new { command = "close" });
            await client.ExpectAsync("""{"success":true,"code":0,"message":"close done"}""");
            await client.DisposeAsync();
        }
        var deadline = DateTime.UtcNow + WsClient.Patience;
        while (ConnectionsToSshd() > before && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Equal(before, ConnectionsToSshd());
    }

    [SkippableFact]
    public async Task Killing_sshd_mid_stream_ends_with_code_5_after_the_bytes_already_echoed()
    {
        using var echo = Peer.Echo();
        await using var host = await StartHostAsync(_knownHosts);
        await using var client = await TunnelAsync(host, echo.Port);
        await client.SendAsync(new { command = "send", data = "before the end" });
        var received = new MemoryStream();
        var answer = await client.ReceiveSkippingDataAsync(received);
        Assert.Equal("send done", (string)answer["message"]!);
        await client.ReadDataAsync(received, "before the end".Length);
        Assert.Equal("before the end", System.Text.Encoding.UTF8.GetString(received.ToArray()));

        _sshd.Process.Kill(entireProcessTree: true);
        var end = await client.ReceiveSkippingDataAsync(received);
        Assert.Equal(5, (int)end["code"]!); // the tunnel was up: its end is the peer closing, never an SSH failure (6 is for connects)
    }
}
