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
    /// <param name="port">A port to listen on (to start it again where it was), else a free one.</param>
    public static async Task<RedisServer> StartAsync(TestPki? tls = null, int? port = null)
    {
        Requirements.Need("/usr/bin/redis-server", "redis-server");
        var listenPort = port ?? Loopback.FreePort();
        string[] listen = tls is null
            ? ["--port", listenPort.ToString()]
            : ["--port", "0", "--tls-port", listenPort.ToString(), "--tls-cert-file", tls.LeafFile, "--tls-key-file", tls.LeafKeyFile,
               "--tls-ca-cert-file", tls.CaFile, "--tls-auth-clients", "no"];
        var info = new ProcessStartInfo("/usr/bin/redis-server",
            [.. listen, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", Path.GetTempPath()])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        var process = Process.Start(info)!;
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        await Loopback.WaitUntilListeningAsync(listenPort);
        return new RedisServer(process, listenPort);
    }

    /// <summary>A real redis-server listening on the Unix socket <paramref name="socketPath"/> only (no TCP port); ready when it says so.</summary>
    public static async Task<RedisServer> StartUnixAsync(string socketPath)
    {
        Requirements.Need("/usr/bin/redis-server", "redis-server");
        var info = new ProcessStartInfo("/usr/bin/redis-server",
            ["--port", "0", "--unixsocket", socketPath, "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
             "--dir", Path.GetDirectoryName(socketPath)!])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        var process = Process.Start(info)!;
        _ = process.StandardError.ReadToEndAsync();
        // Redis says when it accepts connections; the socket exists from then on.
        using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (await process.StandardOutput.ReadLineAsync(patience.Token) is { } line)
            if (line.Contains("ready to accept connections", StringComparison.OrdinalIgnoreCase)) break;
        _ = process.StandardOutput.ReadToEndAsync();
        return new RedisServer(process, 0);
    }

    /// <summary>One command sent straight to this Redis (not through ws2s): its reply, read whole (an integer or a bulk string).</summary>
    public async Task<string> CommandAsync(string command)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, Port);
        var stream = tcp.GetStream();
        await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(command + "\r\n"));
        var reply = new List<byte>();
        var buffer = new byte[4096];
        while (true)
        {
            var read = await stream.ReadAsync(buffer);
            if (read == 0) break;
            reply.AddRange(buffer.AsSpan(0, read));
            var text = System.Text.Encoding.UTF8.GetString([.. reply]);
            var firstLine = text.IndexOf("\r\n", StringComparison.Ordinal);
            if (firstLine < 0) continue;
            if (text[0] != '$') return text[1..firstLine];
            var length = int.Parse(text[1..firstLine]);
            if (reply.Count >= firstLine + 2 + length + 2) return text.Substring(firstLine + 2, length);
        }
        throw new IOException("redis closed the connection before replying");
    }

    private int _disposed;

    /// <summary>Kills it (a Redis that goes away); once, however often it is called.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        _process.Kill();
        await _process.WaitForExitAsync();
        _process.Dispose();
    }
}
