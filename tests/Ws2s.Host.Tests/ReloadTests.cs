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
        Publish("..2026_12_01_10_00_00.1", TestConfig.Loopback);
        File.CreateSymbolicLink(Path.Combine(volume, "config.json"), "..data/config.json");

        await using var server = ServerProcess.Start(["--config", Path.Combine(volume, "config.json")], home: _home);
        var url = await server.ListeningUrlAsync();
        await using (var client = await WsClient.ConnectAsync(url))
            await client.EchoThroughAsync(echo.Port, "before the update");

        Publish("..2026_12_01_10_05_00.2", TestConfig.Loopback.Serving(s => s.Listen.Port = url.Port).With(o => o.Destinations.Deny = [$"127.0.0.1:{echo.Port}"]));
        await server.WaitForLineAsync(l => l.Contains("config reloaded"));
        await using var after = await WsClient.ConnectAsync(url);
        await after.SendAsync(new { command = "connect", host = "127.0.0.1", port = echo.Port });
        Assert.Equal(4, (int)(await after.ReceiveJsonAsync())["code"]!);
    }

#pragma warning disable SYSLIB1054 // one call, strings only
    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int rename(string from, string to);
#pragma warning restore SYSLIB1054
}
