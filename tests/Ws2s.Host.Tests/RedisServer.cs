using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Ws2s.Host.Tests;

/// <summary>A real redis-server (Debian's package) on a free loopback port, nothing saved to disk.</summary>
public sealed class RedisServer : IAsyncDisposable
{
    private readonly Process _process;

    private RedisServer(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    /// <param name="tls">Serve TLS only (Debian's redis is built with it), with this PKI's <c>redis.test</c> certificate.</param>
    public static async Task<RedisServer> StartAsync(TestPki? tls = null)
    {
        Requirements.Need("/usr/bin/redis-server", "redis-server");
        var port = Loopback.FreePort();
        string[] listen = tls is null
            ? ["--port", port.ToString()]
            : ["--port", "0", "--tls-port", port.ToString(), "--tls-cert-file", tls.LeafFile, "--tls-key-file", tls.LeafKeyFile,
               "--tls-ca-cert-file", tls.CaFile, "--tls-auth-clients", "no"];
        var info = new ProcessStartInfo("/usr/bin/redis-server",
            [.. listen, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", Path.GetTempPath()])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        var process = Process.Start(info)!;
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        await Loopback.WaitUntilListeningAsync(port);
        return new RedisServer(process, port);
    }

    public async ValueTask DisposeAsync()
    {
        _process.Kill();
        await _process.WaitForExitAsync();
        _process.Dispose();
    }
}
