using Ws2s.AspNetCore.Configuration;

namespace Ws2s.Host.Tests;

/// <summary>
/// ws2sd and a Node client together in a network namespace the test creates (<c>unshare -n</c>): the namespace has only its
/// own <c>lo</c>, brought up (and whatever <c>setup</c> adds to it), so nothing either of them sends can leave the machine.
/// Name lookups are sealed in too (review): a network namespace does not stop a lookup handed to a local service over a
/// Unix socket (systemd-resolved's <c>resolve</c> module, nscd, sssd), which would ask the real network. So the namespace
/// has its own mounts as well (<c>-m</c>), where <c>/etc/nsswitch.conf</c> says <c>hosts: files dns</c>, the resolver's
/// one name server is 127.0.0.1 (this namespace's, where nothing answers), and nscd's socket folder is empty.
/// </summary>
internal static class NetworkNamespace
{
    /// <summary>
    /// Writes the client script and ws2sd's config (listening on <paramref name="port"/>, any Origin, then
    /// <paramref name="options"/>) into <paramref name="home"/>, runs both in a new namespace, and returns the line the
    /// client ended with (<c>CLIENT DONE…</c>) and every line printed by then. Skips without root and unshare (fails on CI).
    /// </summary>
    public static async Task<(string Done, List<string> Output)> RunAsync(string home, string clientScript, int port, Action<Ws2sOptions> options,
        string clientArguments, string setup = "ip link set lo up")
    {
        if (Environment.UserName != "root" || !File.Exists("/usr/bin/unshare"))
        {
            Assert.False(Environment.GetEnvironmentVariable("CI") == "true", "network namespaces need root and unshare");
            Skip.If(true, "network namespaces need root and unshare (util-linux)");
        }
        var client = Path.Combine(home, "client.mjs");
        await File.WriteAllTextAsync(client, clientScript);
        var config = Path.Combine(home, "config.json");
        await File.WriteAllTextAsync(config,
            TestConfig.Defaults
                .Serving(s => s.Listen.Port = port) // the client in the namespace dials it there
                .With(o =>
                {
                    o.Origins = ["*"];
                    options(o);
                }));
        await File.WriteAllTextAsync(Path.Combine(home, "nsswitch.conf"), "hosts: files dns\n");
        await File.WriteAllTextAsync(Path.Combine(home, "resolv.conf"), "nameserver 127.0.0.1\n");
        var sealLookups = $"mount --bind {home}/nsswitch.conf /etc/nsswitch.conf && mount --bind {home}/resolv.conf /etc/resolv.conf"
            + " && for d in /run/nscd /var/run/nscd; do if [ -d $d ]; then mount -t tmpfs none $d || exit 1; fi; done";
        await using var server = ServerProcess.Start(["--config", config], home: home, launcher:
            ["unshare", "-n", "-m", "--", "bash", "-c",
                $"{sealLookups} && {setup} && (node --experimental-websocket --no-warnings {client} {clientArguments} &) && exec \"$@\"", "ns"]);
        var done = await server.WaitForLineAsync(line => line.StartsWith("CLIENT DONE", StringComparison.Ordinal));
        return (done, [.. server.Output]);
    }
}
