using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Ws2s.Bench;

/// <summary>
/// A peer relay in front of the echo server, on a free loopback port, when its Debian package is
/// installed, so the same workloads measure it beside ws2s: websockify (Python; WebSocket to TCP) or
/// socat (C, a process per connection; TCP to TCP).
/// </summary>
internal sealed class PeerRelay : IAsyncDisposable
{
    private readonly Process _process;

    private PeerRelay(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    public double CpuSeconds() => ProcessCpu.TreeSeconds(_process.Id);

    public int Pid => _process.Id;

    /// <summary>wisp-js's own Wisp server (npm @mercuryworkshop/wisp-js, installed in <paramref name="modules"/>), loopback destinations allowed.</summary>
    public static Task<PeerRelay?> WispJsAsync(string modules) =>
        StartAsync("node", port => [Path.Combine(AppContext.BaseDirectory, "node", "wisp-js-server.mjs"), "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--log-level", "ERROR"],
            new() { ["WISP_JS_MODULES"] = modules });

    /// <summary>
    /// wisp-server-python from its checkout (brought with the fetch tool, run from outside this repository: it is AGPL), on
    /// Debian's python3 with python3-websockets and python3-uvloop, loopback destinations allowed.
    /// </summary>
    /// <remarks>
    /// Its UDP needs asyncudp, which Debian lacks: put a stand-in module on PYTHONPATH (this bench measures TCP only).
    /// It runs a process per core (SO_REUSEPORT), as it does by default; their CPU is counted with it.
    /// </remarks>
    public static Task<PeerRelay?> WispPythonAsync(string checkout) =>
        StartAsync("/usr/bin/python3", port => ["-m", "wisp.server", "--host", "127.0.0.1", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--allow-loopback", "--log-level", "error"],
            new() { ["PYTHONPATH"] = string.Join(':', new[] { Path.Combine(checkout, "src"), Environment.GetEnvironmentVariable("PYTHONPATH") }.Where(p => !string.IsNullOrEmpty(p))) });

    public static Task<PeerRelay?> WebsockifyAsync(IPEndPoint echo) =>
        StartAsync("websockify", port => [$"127.0.0.1:{port}", echo.ToString()]);

    public static Task<PeerRelay?> SocatAsync(IPEndPoint echo) =>
        StartAsync("socat", port => [$"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr,backlog=4096", $"TCP:{echo},nodelay"]);

    /// <summary>A WebSocket relay in a few lines of ASP.NET Core, nothing of ws2s (<see cref="BareRelay"/>): this bench, run again.</summary>
    public static Task<PeerRelay?> BareKestrelAsync(IPEndPoint echo)
    {
        var (self, prefix) = Itself();
        // Server GC, as ws2sd has it (this bench runs with the workstation GC).
        return StartAsync(self, port => [.. prefix, "--bare-relay", port.ToString(System.Globalization.CultureInfo.InvariantCulture), echo.ToString()],
            new() { ["DOTNET_gcServer"] = "1" });
    }

    /// <summary>How to run this bench again: its program, and the arguments before its own (the assembly, under <c>dotnet</c>).</summary>
    public static (string Program, string[] Prefix) Itself()
    {
        var self = Environment.ProcessPath!;
        return (self, Path.GetFileNameWithoutExtension(self) == "dotnet" ? [typeof(PeerRelay).Assembly.Location] : []);
    }

    /// <summary>Starts <paramref name="program"/> (from PATH, or a full path) listening on a free port, or returns null when it is not installed.</summary>
    private static async Task<PeerRelay?> StartAsync(string program, Func<int, string[]> arguments, Dictionary<string, string>? environment = null)
    {
        var path = Path.IsPathRooted(program) ? program : (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
            .Select(dir => Path.Combine(dir, program)).FirstOrDefault(File.Exists);
        if (path is null) return null;
        var port = FreePort();
        var info = new ProcessStartInfo(path) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in arguments(port)) info.ArgumentList.Add(arg);
        foreach (var (name, value) in environment ?? []) info.Environment[name] = value;
        info.Environment.Remove("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS"); // measured as shipped, whatever the bench itself uses
        var process = Process.Start(info)!;
        _ = DrainAsync(process.StandardOutput);
        _ = DrainAsync(process.StandardError);
        // Ready when it accepts a connection (for socat, that probe costs one forked child).
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
        return new PeerRelay(process, port);
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
