using System.Diagnostics;

namespace Ws2s.Bench;

/// <summary>ws2sd (built beside this tool) as its own process on a free loopback port, so its RSS is its own.</summary>
internal sealed class ServerProcess : IAsyncDisposable
{
    private readonly Process _process;

    private ServerProcess(Process process, Uri url)
    {
        _process = process;
        Url = url;
    }

    public Uri Url { get; }

    public int Pid => _process.Id;

    /// <summary>
    /// The server's configuration for benchmarks: loopback allowed (the echo server is there), limits
    /// lifted, the echo server as the websockify endpoint's target <c>echo</c>, and the TLS echo
    /// server's certificate trusted.
    /// </summary>
    public static string BenchConfig(System.Net.IPEndPoint echo, string? trustedCertificate = null) => $$$$"""
        {"listen":{"host":"127.0.0.1","port":0},"allowConnectToServerLocal":true,"origins":["*"],
         "rawTargets":{"echo":"{{{{echo}}}}"},
         "tls":{"trustedCertificates":[{{{{(trustedCertificate is null ? "" : $"\"{trustedCertificate}\"")}}}}]},
         "limits":{"maxSessions":100000,"maxSessionsPerClient":100000,"maxConnectsPerSecond":0,"idleTimeoutSeconds":0},
         "Logging":{"LogLevel":{"Default":"Warning"}}}
        """;

    public static async Task<ServerProcess> StartAsync(string configJson, IReadOnlyDictionary<string, string>? environment = null)
    {
        var config = Path.Combine(Directory.CreateTempSubdirectory("ws2s-bench-").FullName, "config.json");
        await File.WriteAllTextAsync(config, configJson);
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "ws2sd.dll"));
        info.ArgumentList.Add("--config");
        if (Environment.GetEnvironmentVariable("BENCH_SERVER_INLINE_COMPLETIONS") != "1") info.Environment.Remove("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS"); // measured as shipped, whatever the bench itself uses
        info.ArgumentList.Add(config);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) info.Environment[name] = value;
        var process = Process.Start(info)!;
        while (await process.StandardOutput.ReadLineAsync() is { } line)
            if (line.StartsWith("ws2s listening on ", StringComparison.Ordinal))
            {
                // Keep reading what it prints (to stderr here), or a full pipe would block its logging.
                _ = Task.Run(async () =>
                {
                    while (await process.StandardOutput.ReadLineAsync() is { } more) Console.Error.WriteLine("ws2sd: " + more);
                });
                return new ServerProcess(process, new Uri(line["ws2s listening on ".Length..].Split(' ')[0]));
            }
        throw new InvalidOperationException("ws2sd did not start");
    }

    /// <summary>Resident set size in bytes, from /proc.</summary>
    public long Rss() => ProcessMemory.Rss(_process.Id);

    /// <summary>CPU time the server has used so far (user + system, with its children), in seconds.</summary>
    public double CpuSeconds() => ProcessCpu.TreeSeconds(_process.Id);

    public async ValueTask DisposeAsync()
    {
        _process.Kill();
        await _process.WaitForExitAsync();
        _process.Dispose();
    }
}
