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
        Assert.Contains("# pass 23", tap);
    }
}

/// <summary>The classic-script and CommonJS entries: built from the modules, current, loadable, and packed.</summary>
public sealed class JsPackageTests
{
    private static async Task<(int Exit, string Output)> RunAsync(string file, params string[] args)
    {
        var run = await Command.RunAsync(file, args, workingDirectory: Path.Combine(Repository.Root, "clients", "ws2s-js"));
        return (run.Exit, run.Printed);
    }

    [SkippableFact]
    public async Task The_built_entries_are_current_require_loads_the_commonjs_one_and_npm_pack_ships_every_export()
    {
        Requirements.Need("/usr/bin/node", "nodejs");
        var (exit, output) = await RunAsync("node", "build.mjs", "--check");
        Assert.True(exit == 0, output);
        // require("ws2s-js") from an app that has it in node_modules (a link to this folder).
        var app = Directory.CreateTempSubdirectory("ws2s-js-app-").FullName;
        Directory.CreateDirectory(Path.Combine(app, "node_modules"));
        File.CreateSymbolicLink(Path.Combine(app, "node_modules", "ws2s-js"), Path.Combine(Repository.Root, "clients", "ws2s-js"));
        await File.WriteAllTextAsync(Path.Combine(app, "app.cjs"), """
            const path = require.resolve("ws2s-js");
            const ws2s = require("ws2s-js");
            const replies = new ws2s.RespParser().feed(new TextEncoder().encode("+OK\r\n:42\r\n"));
            console.log(path.endsWith("dist/ws2s.cjs"), typeof ws2s.WS2S, JSON.stringify(replies));
            """);
        (exit, output) = await RunAsync("node", Path.Combine(app, "app.cjs"));
        Assert.Equal("true function [\"OK\",42]", output.Trim());

        Requirements.Need("/usr/bin/npm", "npm");
        (exit, output) = await RunAsync("npm", "pack", "--dry-run", "--json", "--ignore-scripts");
        Assert.True(exit == 0, output);
        var packed = System.Text.Json.JsonDocument.Parse(output).RootElement[0].GetProperty("files").EnumerateArray()
            .Select(f => f.GetProperty("path").GetString()).ToHashSet();
        using var package = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(Repository.Root, "clients", "ws2s-js", "package.json")));
        var named = package.RootElement.GetProperty("exports").EnumerateObject()
            .SelectMany(e => e.Value.ValueKind == System.Text.Json.JsonValueKind.String ? [e.Value.GetString()!] : e.Value.EnumerateObject().Select(c => c.Value.GetString()!))
            .Select(p => p.TrimStart('.', '/'));
        Assert.All(named, file => Assert.Contains(file, packed));
    }

    [SkippableFact]
    public async Task The_type_declarations_check_with_tsc_against_a_program_that_uses_the_whole_api()
    {
        Requirements.Need("/usr/bin/npm", "npm");
        // TypeScript from the npm registry (the one network this machine has), into a folder of its own.
        var tools = Directory.CreateTempSubdirectory("ws2s-tsc-").FullName;
        var (exit, output) = await RunAsync("npm", "install", "--prefix", tools, "--no-save", "--no-package-lock", "--silent", "typescript@7.0.2");
        Skip.If(exit != 0, $"npm could not install typescript here: {output}");
        (exit, output) = await RunAsync(Path.Combine(tools, "node_modules", ".bin", "tsc"), "-p", "test/types");
        Assert.True(exit == 0, output);
    }
}

