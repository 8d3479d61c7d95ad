using System.Diagnostics;

namespace Ws2s.Host.Tests;

/// <summary>
/// A real OpenSSH sshd (Debian's openssh-server) on a free loopback port, run by the test as the
/// current user with its own host key and authorized keys in a temporary folder: no system-wide
/// configuration is read or changed.
/// </summary>
public sealed class SshServer : IAsyncDisposable
{
    private readonly string _directory;

    private SshServer(string directory, Process process, int port)
    {
        _directory = directory;
        Process = process;
        Port = port;
    }

    public Process Process { get; }
    public int Port { get; }
    public string User => Environment.UserName;

    /// <summary>An Ed25519 key (OpenSSH format, no passphrase) that may log in.</summary>
    public string Ed25519Key => File.ReadAllText(Path.Combine(_directory, "client_ed25519"));

    /// <summary>An RSA key (PEM) with passphrase <see cref="RsaPassphrase"/> that may log in.</summary>
    public string RsaKey => File.ReadAllText(Path.Combine(_directory, "client_rsa"));

    public const string RsaPassphrase = "correct horse";

    /// <summary>An ECDSA key that may *not* log in.</summary>
    public string StrangerKey => File.ReadAllText(Path.Combine(_directory, "stranger_ecdsa"));

    /// <summary>The known_hosts line for this server's host key.</summary>
    public string KnownHostsLine
    {
        get
        {
            var fields = File.ReadAllText(Path.Combine(_directory, "host_ed25519.pub")).Split(' ');
            return $"[127.0.0.1]:{Port} {fields[0]} {fields[1]}";
        }
    }

    /// <param name="permitOpen">sshd's PermitOpen: which host:port channels it allows (default any).</param>
    public static async Task<SshServer> StartAsync(string permitOpen = "any")
    {
        Requirements.Need("/usr/sbin/sshd", "openssh-server");
        var directory = Directory.CreateTempSubdirectory("ws2s-sshd-").FullName;
        await KeygenAsync(directory, "host_ed25519", "-t", "ed25519", "-N", "");
        await KeygenAsync(directory, "client_ed25519", "-t", "ed25519", "-N", "");
        await KeygenAsync(directory, "client_rsa", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", RsaPassphrase);
        await KeygenAsync(directory, "stranger_ecdsa", "-t", "ecdsa", "-N", "");
        await File.WriteAllTextAsync(Path.Combine(directory, "authorized_keys"),
            await File.ReadAllTextAsync(Path.Combine(directory, "client_ed25519.pub")) +
            await File.ReadAllTextAsync(Path.Combine(directory, "client_rsa.pub")));
        // sshd insists on its privilege-separation directory, even when run by hand.
        if (Environment.UserName == "root") Directory.CreateDirectory("/run/sshd");

        var port = Loopback.FreePort();
        var config = Path.Combine(directory, "sshd_config");
        await File.WriteAllTextAsync(config, $"""
            Port {port}
            ListenAddress 127.0.0.1
            HostKey {directory}/host_ed25519
            PidFile {directory}/sshd.pid
            AuthorizedKeysFile {directory}/authorized_keys
            StrictModes no
            UsePAM no
            PasswordAuthentication yes
            KbdInteractiveAuthentication no
            PermitRootLogin prohibit-password
            AllowTcpForwarding yes
            PermitOpen {permitOpen}
            LogLevel ERROR
            """);
        var process = Process.Start(new ProcessStartInfo("/usr/sbin/sshd", ["-D", "-e", "-f", config])
        { RedirectStandardOutput = true, RedirectStandardError = true })!;
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        await Loopback.WaitUntilListeningAsync(port);
        return new SshServer(directory, process, port);
    }

    private static async Task KeygenAsync(string directory, string name, params string[] args)
    {
        var info = new ProcessStartInfo("ssh-keygen", ["-q", "-f", Path.Combine(directory, name), "-C", name, .. args])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        using var keygen = Process.Start(info)!;
        await keygen.WaitForExitAsync();
        Assert.True(keygen.ExitCode == 0, await keygen.StandardError.ReadToEndAsync());
    }

    public async ValueTask DisposeAsync()
    {
        if (!Process.HasExited) Process.Kill(entireProcessTree: true);
        await Process.WaitForExitAsync();
        Process.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
