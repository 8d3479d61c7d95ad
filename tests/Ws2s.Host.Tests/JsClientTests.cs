using System.Diagnostics;

namespace Ws2s.Host.Tests;

/// <summary>
/// The JavaScript client's own suite (clients/ws2s-js/test, node --test): the RESP parser's unit
/// tests, and the live conversations against this server, a real echo peer and a real Redis.
/// </summary>
public sealed class JsClientTests
{
    [SkippableFact]
    public async Task The_ws2s_js_suite_passes_under_node_against_the_live_server_and_Redis()
    {
        Requirements.Need("/usr/bin/node", "nodejs");
        await using var redis = await RedisServer.StartAsync();
        using var pki = new TestPki();
        await using var tlsRedis = await RedisServer.StartAsync(pki);
        using var echo = Peer.Echo();
        using var refused = new RefusedPort();
        await using var host = await Ws2sHost.StartAsync(
            $$$"""{"listen":{"host":"127.0.0.1","port":3613},"allowConnectToServerLocal":true,"origins":["*"],"tls":{"trustedCertificates":["{{{pki.CaFile}}}"]}}""");

        var info = new ProcessStartInfo("node", ["--experimental-websocket", "--test", "--test-reporter=tap", "test/resp.test.js", "test/live.test.js"])
        {
            WorkingDirectory = Path.Combine(Repository.Root, "clients", "ws2s-js"),
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        info.Environment["WS2S_URL"] = host.Url.ToString();
        info.Environment["ECHO_PORT"] = echo.Port.ToString();
        info.Environment["REDIS_PORT"] = redis.Port.ToString();
        info.Environment["REFUSED_PORT"] = refused.Port.ToString();
        info.Environment["TLS_REDIS_PORT"] = tlsRedis.Port.ToString();
        using var node = Process.Start(info)!;
        var output = node.StandardOutput.ReadToEndAsync();
        var errors = node.StandardError.ReadToEndAsync();
        await node.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token);
        var tap = await output;
        Assert.True(node.ExitCode == 0, tap + await errors);
        Assert.Contains("# fail 0", tap);
        Assert.Contains("# skipped 0", tap);
        Assert.Contains("# pass 15", tap);
    }
}
