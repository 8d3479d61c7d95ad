using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http.Features;
using Ws2s.AspNetCore.Admission;
using Ws2s.AspNetCore.Configuration;

namespace Ws2s.Host.Tests;

/// <summary>Configuration changes reach the running server, whichever way they are made, and never half-way.</summary>
public sealed class ReloadTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("ws2s-reload-").FullName;

    public void Dispose() => Directory.Delete(_home, recursive: true);

    /// <summary>
    /// Attack (issue 20, 15): Kubernetes updates a ConfigMap volume by writing a new timestamped folder and
    /// swapping the <c>..data</c> link to it; <c>config.json</c> itself (a link through <c>..data</c>) never
    /// changes, so the change was not noticed until SIGHUP. An operator who removes a destination from the
    /// ConfigMap expects it closed within seconds.
    /// </summary>
    [Fact]
    public async Task A_kubernetes_configmap_update_is_taken_up_without_a_signal()
    {
        using var echo = Peer.Echo();
        var volume = Directory.CreateDirectory(Path.Combine(_home, "configmap")).FullName;
        void Publish(string version, string json)
        {
            Directory.CreateDirectory(Path.Combine(volume, version));
            File.WriteAllText(Path.Combine(volume, version, "config.json"), json);
            var temporary = Path.Combine(volume, "..data_tmp");
            File.CreateSymbolicLink(temporary, version);
            // rename(2) over the old link: the atomic swap the kubelet makes (File.Move would follow the link).
            Assert.Equal(0, rename(temporary, Path.Combine(volume, "..data")));
        }
        Publish("..2026_12_01_10_00_00.1", """{"listen":{"host":"127.0.0.1","port":0},"allowConnectToServerLocal":true}""");
        File.CreateSymbolicLink(Path.Combine(volume, "config.json"), "..data/config.json");

        await using var server = ServerProcess.Start(["--config", Path.Combine(volume, "config.json")], home: _home);
        var url = await server.ListeningUrlAsync();
        await using (var client = await WsClient.ConnectAsync(url))
            await client.EchoThroughAsync(echo.Port, "before the update");

        Publish("..2026_12_01_10_05_00.2", $$$"""{"listen":{"host":"127.0.0.1","port":{{{url.Port}}}},"allowConnectToServerLocal":true,"destinations":{"deny":["127.0.0.1:{{{echo.Port}}}"]}}""");
        await server.WaitForLineAsync(l => l.Contains("config reloaded"));
        await using var after = await WsClient.ConnectAsync(url);
        await after.SendAsync(new { command = "connect", host = "127.0.0.1", port = echo.Port });
        Assert.Equal(4, (int)(await after.ReceiveJsonAsync())["code"]!);
    }

    /// <summary>
    /// Attack (issue 20, 16): <c>AdmissionPolicy</c> computed the core's settings from the options, then
    /// wrote them back; a reload between the two left the old rules in force for new sessions until the
    /// next change. A reader racing every reload must never leave stale settings behind.
    /// </summary>
    [Fact]
    public async Task Settings_computed_during_a_reload_never_outlive_it()
    {
        var options = new Ws2sOptions();
        // Many deny rules make computing the settings take a while (a long list is an operator's right).
        List<string> deny = [.. Enumerable.Range(1, 400).Select(n => $"10.{n / 250}.{n % 250}.0/24")];
        options.Destinations = new Ws2sOptions.DestinationOptions { Allow = ["127.0.0.1:1"], Deny = deny };
        using var admission = new AdmissionPolicy(options, new NoServer());
        var parse = System.Diagnostics.Stopwatch.StartNew();
        _ = admission.Settings;
        var window = parse.Elapsed.TotalMicroseconds;
        for (var i = 2; i < 400; i++)
        {
            admission.Reload(); // the settings are computed again at the next read
            var go = new ManualResetEventSlim();
            var reader = Task.Run(() =>
            {
                go.Wait();
                return admission.Settings;
            });
            go.Set();
            // Somewhere inside the reader's computation (it takes tens of microseconds)…
            var until = System.Diagnostics.Stopwatch.GetTimestamp() + (long)(System.Diagnostics.Stopwatch.Frequency * window * (i % 40) / 40 / 1_000_000);
            while (System.Diagnostics.Stopwatch.GetTimestamp() < until) Thread.SpinWait(1);
            // …a reload, as Ws2sReload makes one: the options change, then the policy takes them up.
            options.Destinations = new Ws2sOptions.DestinationOptions { Allow = [$"127.0.0.1:{i}"], Deny = deny };
            admission.Reload();
            await reader;
            var allowed = admission.Settings.Policy.Allow.Select(r => r.Text).ToList();
            Assert.True(allowed.SequenceEqual([$"127.0.0.1:{i}"]), $"after reload {i} new sessions get {string.Join(", ", allowed)}");
        }
    }

#pragma warning disable SYSLIB1054 // one call, strings only
    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int rename(string from, string to);
#pragma warning restore SYSLIB1054

    private sealed class NoServer : IServer
    {
        public IFeatureCollection Features { get; } = new FeatureCollection();

        public Task StartAsync<TContext>(IHttpApplication<TContext> application, CancellationToken cancellationToken) where TContext : notnull => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public void Dispose() { }
    }
}
