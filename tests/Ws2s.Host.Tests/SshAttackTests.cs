using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Ws2s.Host.Tests;

/// <summary>
/// Attacks (issue 10, 4) on SSH tunnels, against a real sshd: a private key that asks for endless
/// key derivation, and another local process riding a client's tunnel through its forward port.
/// </summary>
public sealed class SshAttackTests : IAsyncLifetime
{
    private SshServer _sshd = null!;
    private string _home = null!;

    public async Task InitializeAsync()
    {
        _sshd = await SshServer.StartAsync();
        _home = Directory.CreateTempSubdirectory("ws2s-ssh-attack-").FullName;
        await File.WriteAllTextAsync(Path.Combine(_home, "known_hosts"), _sshd.KnownHostsLine + "\n");
        await File.WriteAllTextAsync(Path.Combine(_home, "config.json"),
            TestConfig.Loopback.With(o => o.Ssh.KnownHosts = $"{_home}/known_hosts"));
    }

    public async Task DisposeAsync()
    {
        if (_sshd is not null) await _sshd.DisposeAsync();
        if (_home is not null) Directory.Delete(_home, recursive: true);
    }

    private Dictionary<string, object> Through(int port, string key, string? passphrase = null)
    {
        var request = new Dictionary<string, object>
        {
            ["command"] = "connect", ["host"] = "127.0.0.1", ["port"] = port, ["ssh_host"] = "127.0.0.1",
            ["ssh_port"] = _sshd.Port, ["ssh_username"] = _sshd.User, ["ssh_private_key"] = key,
        };
        if (passphrase is not null) request["ssh_private_key_password"] = passphrase;
        return request;
    }

    /// <summary>
    /// An encrypted OpenSSH key (made by ssh-keygen with 16 rounds) whose header then asks for
    /// <paramref name="rounds"/> bcrypt rounds: decrypting it would take hours.
    /// </summary>
    private async Task<string> CostlyKeyAsync(uint rounds)
    {
        var path = Path.Combine(_home, "costly");
        using (var keygen = Process.Start(new ProcessStartInfo("ssh-keygen", ["-q", "-t", "ed25519", "-a", "16", "-N", "secret", "-f", path])
               { RedirectStandardOutput = true, RedirectStandardError = true })!)
            await keygen.WaitForExitAsync();
        var lines = (await File.ReadAllTextAsync(path)).Trim().Split('\n');
        var blob = Convert.FromBase64String(string.Concat(lines[1..^1]));
        // magic "openssh-key-v1\0", string ciphername, string kdfname, string kdfoptions = (string salt, uint32 rounds)
        var at = 15;
        at += 4 + BinaryPrimitives.ReadInt32BigEndian(blob.AsSpan(at));
        Assert.Equal("bcrypt", Encoding.ASCII.GetString(blob, at + 4, BinaryPrimitives.ReadInt32BigEndian(blob.AsSpan(at))));
        at += 4 + BinaryPrimitives.ReadInt32BigEndian(blob.AsSpan(at));
        at += 4; // kdfoptions length
        at += 4 + BinaryPrimitives.ReadInt32BigEndian(blob.AsSpan(at)); // salt
        Assert.Equal(16u, BinaryPrimitives.ReadUInt32BigEndian(blob.AsSpan(at)));
        BinaryPrimitives.WriteUInt32BigEndian(blob.AsSpan(at), rounds);
        return $"{lines[0]}\n{string.Join('\n', Convert.ToBase64String(blob).Chunk(70).Select(c => new string(c)))}\n{lines[^1]}\n";
    }

    [SkippableFact]
    public async Task A_key_that_asks_for_endless_rounds_is_refused_at_once_and_holds_up_no_other_tunnel()
    {
        using var echo = Peer.Echo();
        await using var host = await Ws2sHost.StartAsync(await File.ReadAllTextAsync(Path.Combine(_home, "config.json")));
        await using var attacker = await host.ConnectAsync();
        await using var honest = await host.ConnectAsync();

        await attacker.SendAsync(Through(echo.Port, await CostlyKeyAsync(100_000), "secret"));
        await honest.SendAsync(Through(echo.Port, _sshd.Ed25519Key));

        var refused = await attacker.ReceiveJsonAsync();
        Assert.Equal(6, (int)refused["code"]!);
        Assert.Contains("100000 key-derivation rounds", (string)refused["message"]!);
        Assert.Contains("ssh.maxKdfRounds", (string)refused["message"]!);
        await honest.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
    }

    /// <summary>The TCP ports a process listens on, from its socket descriptors and /proc/net/tcp.</summary>
    private static HashSet<int> ListeningPorts(int pid)
    {
        var inodes = new HashSet<string>();
        foreach (var fd in Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"))
            if (new FileInfo(fd).LinkTarget is { } target && target.StartsWith("socket:[", StringComparison.Ordinal))
                inodes.Add(target[8..^1]);
        var ports = new HashSet<int>();
        foreach (var table in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
            foreach (var line in File.ReadLines(table).Skip(1))
            {
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (fields[3] == "0A" && inodes.Contains(fields[9]))
                    ports.Add(int.Parse(fields[1].Split(':')[1], NumberStyles.HexNumber));
            }
        return ports;
    }

    [SkippableFact]
    public async Task Another_local_process_cannot_ride_a_clients_tunnel_through_its_forward_port()
    {
        // The target greets each connection with a secret: whoever reads it reached the target.
        var secret = Guid.NewGuid().ToString();
        using var target = new Peer(async (socket, stop) =>
        {
            await socket.SendAsync(Encoding.ASCII.GetBytes(secret + "\n"), SocketFlags.None, stop);
            var buffer = new byte[1024];
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, stop) > 0) { }
        });
        await using var server = ServerProcess.Start(["--config", Path.Combine(_home, "config.json")], home: _home);
        var url = await server.ListeningUrlAsync();
        var before = ListeningPorts(server.Process.Id);
        await using var client = await WsClient.ConnectAsync(url);
        await client.SendAsync(Through(target.Port, _sshd.Ed25519Key));
        await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
        var greeting = await client.ReceiveJsonAsync();
        Assert.Equal(secret + "\n", Encoding.ASCII.GetString(Convert.FromBase64String((string)greeting["data"]!)));

        var doors = ListeningPorts(server.Process.Id).Except(before).ToList();
        Assert.NotEmpty(doors); // the tunnel's forward listens: the attack has somewhere to knock
        foreach (var door in doors)
        {
            using var intruder = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await intruder.ConnectAsync(System.Net.IPAddress.Loopback, door);
            var heard = new MemoryStream();
            var buffer = new byte[1024];
            using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                int read;
                while ((read = await intruder.ReceiveAsync(buffer, SocketFlags.None, patience.Token)) > 0) heard.Write(buffer, 0, read);
            }
            catch (SocketException) { }
            catch (OperationCanceledException)
            {
                Assert.Fail($"the forward port {door} kept a stranger's connection open");
            }
            Assert.DoesNotContain(secret, Encoding.ASCII.GetString(heard.ToArray()));
        }

        // The client's own tunnel still works.
        await client.SendAsync(new { command = "send", data = "still mine" });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"send done"}""");
    }
}
