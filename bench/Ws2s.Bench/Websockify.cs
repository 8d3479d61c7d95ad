using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Ws2s.Bench;

/// <summary>
/// websockify (the Debian package <c>websockify</c>, Python) as a peer bridge, on a free loopback port
/// in front of the echo server, when it is installed: the same workloads measure it beside ws2s.
/// </summary>
internal sealed class Websockify : IAsyncDisposable
{
    private readonly Process _process;

    private Websockify(Process process, Uri url)
    {
        _process = process;
        Url = url;
    }

    public Uri Url { get; }

    public double CpuSeconds() => ProcessCpu.TreeSeconds(_process.Id);

    /// <summary>Starts websockify in front of <paramref name="echo"/>, or returns null when it is not installed.</summary>
    public static async Task<Websockify?> StartAsync(IPEndPoint echo)
    {
        var path = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
            .Select(dir => Path.Combine(dir, "websockify")).FirstOrDefault(File.Exists);
        if (path is null) return null;
        var port = FreePort();
        var info = new ProcessStartInfo(path) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { $"127.0.0.1:{port}", echo.ToString() }) info.ArgumentList.Add(arg);
        var process = Process.Start(info)!;
        _ = DrainAsync(process.StandardOutput);
        _ = DrainAsync(process.StandardError);
        // Ready when it accepts a connection.
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync(IPAddress.Loopback, port);
                break;
            }
            catch (SocketException) when (deadline.Elapsed < TimeSpan.FromSeconds(20) && !process.HasExited)
            {
                await Task.Delay(100); // polling a port that is not open yet
            }
        }
        return new Websockify(process, new Uri($"ws://127.0.0.1:{port}/"));
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task DrainAsync(StreamReader output)
    {
        while (await output.ReadLineAsync() is not null) { }
    }

    public async ValueTask DisposeAsync()
    {
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
        _process.Dispose();
    }
}
