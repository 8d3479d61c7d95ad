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
        using var udpEcho = new UdpEcho();
        await using var host = await Ws2sHost.StartAsync(
            TestConfig.Loopback.With(o =>
            {
                o.Origins = ["*"];
                o.Tls.TrustedCertificates = [pki.CaFile];
                o.Udp.Enabled = true;
            }));

        var tap = await RunNodeTestsAsync(["test/resp.test.js", "test/live.test.js"], new()
        {
            ["WS2S_URL"] = host.Url.ToString(),
            ["ECHO_PORT"] = echo.Port.ToString(),
            ["REDIS_PORT"] = redis.Port.ToString(),
            ["REFUSED_PORT"] = refused.Port.ToString(),
            ["TLS_REDIS_PORT"] = tlsRedis.Port.ToString(),
            ["UDP_ECHO_PORT"] = udpEcho.Port.ToString(),
        });
        Assert.Contains("# pass 28", tap);
    }

    [SkippableFact]
    public async Task The_Direct_Sockets_suite_passes_under_node_over_ws2s_binary_mode_and_over_Wisp()
    {
        Requirements.Need("/usr/bin/node", "nodejs");
        const long pipeBytes = 64L << 20;
        await using var redis = await RedisServer.StartAsync();
        using var echo = Peer.Echo();
        using var greeter = Peer.Greeter();
        using var source = Peer.Source(pipeBytes);
        var sunk = new TaskCompletionSource<(long Length, string Sha256)>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sink = Peer.Sink(sunk);
        using var refused = new RefusedPort();
        using var udpEcho = new UdpEcho();
        using var pki = new TestPki();
        using var tlsEcho = TlsPeer.Echo(pki.Leaf);
        using var denied = new RefusedPort();
        using var startTls = TlsPeer.StartTls(pki.Leaf);
        await using var host = await Ws2sHost.StartAsync(
            TestConfig.Loopback.With(o =>
            {
                o.Origins = ["*"];
                o.Udp.Enabled = true;
                o.Tls.TrustedCertificates = [pki.CaFile];
                o.Destinations.Deny = [$"127.0.0.1:{denied.Port}"];
            }));
        var tap = await RunNodeTestsAsync(["test/direct-sockets.test.js"], new()
        {
            ["DENIED_PORT"] = denied.Port.ToString(),
            ["TLS_ECHO_PORT"] = tlsEcho.Port.ToString(),
            ["STARTTLS_PORT"] = startTls.Port.ToString(),
            ["WS2S_URL"] = host.Url.ToString(),
            ["ECHO_PORT"] = echo.Port.ToString(),
            ["GREETER_PORT"] = greeter.Port.ToString(),
            ["UDP_ECHO_PORT"] = udpEcho.Port.ToString(),
            ["REFUSED_PORT"] = refused.Port.ToString(),
            ["REDIS_PORT"] = redis.Port.ToString(),
            ["SOURCE_PORT"] = source.Port.ToString(),
            ["SINK_PORT"] = sink.Port.ToString(),
            ["PIPE_BYTES"] = pipeBytes.ToString(),
        });
        Assert.Contains("# pass 18", tap);
        // What the slow consumer passed on reached the sink whole.
        var (length, sha256) = await sunk.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(pipeBytes, length);
        Assert.Equal(Peer.PatternSha256(pipeBytes), sha256);
    }

    [SkippableFact]
    public async Task The_Direct_Sockets_classes_hold_at_their_edges_under_node()
    {
        Requirements.Need("/usr/bin/node", "nodejs");
        // The script makes its own peers and proxies on 127.0.0.1.
        await using var host = await Ws2sHost.StartAsync(
            TestConfig.Loopback.With(o =>
            {
                o.Origins = ["*"];
                o.Udp.Enabled = true;
            }));
        var tap = await RunNodeTestsAsync(["test/direct-sockets-edges.test.js"], new() { ["WS2S_URL"] = host.Url.ToString() });
        Assert.Contains("# pass 11", tap);
    }

    [SkippableFact]
    public async Task Resumable_sockets_come_back_through_a_proxy_that_is_reset_and_say_code_9_when_the_server_refuses_under_node()
    {
        Requirements.Need("/usr/bin/node", "nodejs");
        await using var redis = await RedisServer.StartAsync();
        using var echo = Peer.Echo();
        // The proxy the script resets, and the peers, are on loopback; one server keeps a session for the default 30 s,
        // the other for 1 s, so that a resume comes too late.
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback.With(o => o.Origins = ["*"]));
        await using var shortGrace = await Ws2sHost.StartAsync(
            TestConfig.Loopback.With(o =>
            {
                o.Origins = ["*"];
                o.Resume.GraceSeconds = 1;
            }));
        var tap = await RunNodeTestsAsync(["test/resume.test.js"], new()
        {
            ["WS2S_URL"] = host.Url.ToString(),
            ["SHORT_GRACE_URL"] = shortGrace.Url.ToString(),
            ["ECHO_PORT"] = echo.Port.ToString(),
            ["REDIS_PORT"] = redis.Port.ToString(),
        });
        Assert.Contains("# pass 8", tap);
    }

    [SkippableFact]
    public async Task A_refused_session_says_why_in_the_servers_words_or_what_to_check_under_node()
    {
        Requirements.Need("/usr/bin/node", "nodejs");
        using var dead = new RefusedPort();
        // Tokens required and one session per client; and a server that admits only one page origin (Node sends none).
        await using var tokens = await Ws2sHost.StartAsync(
            TestConfig.Defaults.With(o =>
            {
                o.Tokens = ["right-token"];
                o.Limits.MaxSessionsPerClient = 1;
            }));
        await using var origins = await Ws2sHost.StartAsync(
            TestConfig.Defaults.With(o => o.Origins = ["https://elsewhere.example"]));
        var tap = await RunNodeTestsAsync(["test/refusal.test.js"], new()
        {
            ["TOKEN_URL"] = tokens.Url.ToString(),
            ["ORIGIN_URL"] = origins.Url.ToString(),
            ["DEAD_URL"] = $"ws://127.0.0.1:{dead.Port}/",
        });
        Assert.Contains("# pass 8", tap);
    }

    [SkippableFact]
    public async Task A_script_written_for_ws2s_js_2_1_4_gets_every_callback_as_2_1_4_gives_it_under_node()
    {
        Requirements.Need("/usr/bin/node", "nodejs");
        await using var redis = await RedisServer.StartAsync();
        Assert.Equal("OK", await redis.CommandAsync("CONFIG SET requirepass legacy-secret"));
        using var echo = Peer.Echo();
        using var refused = new RefusedPort();
        await using var host = await Ws2sHost.StartAsync(
            TestConfig.Loopback.With(o => o.Origins = ["*"]));
        var tap = await RunNodeTestsAsync(["test/legacy.test.js"], new()
        {
            ["WS2S_URL"] = host.Url.ToString(),
            ["ECHO_PORT"] = echo.Port.ToString(),
            ["REFUSED_PORT"] = refused.Port.ToString(),
            ["REDIS_PORT"] = redis.Port.ToString(),
            ["REDIS_PASSWORD"] = "legacy-secret",
        });
        Assert.Contains("# pass 1", tap);
    }

    [SkippableFact]
    public async Task Every_range_the_policy_refuses_gets_a_hint_naming_the_key_that_would_allow_it()
    {
        Requirements.Need("/usr/bin/node", "nodejs");
        // The core's own words (Addresses.specialRanges), so a range added there without a hint here fails.
        var local = Ws2s.Protocol.Addresses.serverLocalRanges.Select(r => r.Item2).ToHashSet();
        var rules = Ws2s.Protocol.Addresses.specialRanges.Select(r => r.Item2).ToList();
        var script = $$"""
            import { refusalHint } from "./ws2s.js";
            const rules = {{System.Text.Json.JsonSerializer.Serialize(rules)}};
            console.log(JSON.stringify(rules.map((rule) =>
              [rule, refusalHint(`ws2s refuse to connect target host: 192.0.2.1, cause that's a dangerous operation (${rule})`, 80)])));
            """;
        var run = await Command.RunAsync("node", ["--input-type=module", "-e", script], workingDirectory: Path.Combine(Repository.Root, "clients", "ws2s-js"));
        Assert.True(run.Exit == 0, run.Printed);
        var hints = System.Text.Json.JsonSerializer.Deserialize<string[][]>(run.Output.Trim())!;
        Assert.Equal(rules.Count, hints.Length);
        foreach (var pair in hints)
        {
            var (rule, hint) = (pair[0], pair[1]);
            Assert.Contains("destinations.allow", hint);
            if (local.Contains(rule)) Assert.Contains("\"allowConnectToServerLocal\": true", hint);
            else Assert.StartsWith("To allow it: \"192.0.2.1:80\" in destinations.allow", hint);
        }
    }

    /// <summary>Runs test files of clients/ws2s-js under node --test with these servers in its environment: the TAP output, every test passed.</summary>
    private static async Task<string> RunNodeTestsAsync(string[] files, Dictionary<string, string> environment)
    {
        // Each test is cut at a minute by node itself, so that one that hangs fails with what it printed (not a timeout here).
        var info = new ProcessStartInfo("node", ["--experimental-websocket", "--test", "--test-reporter=tap", "--test-timeout=60000", .. files])
        {
            WorkingDirectory = Path.Combine(Repository.Root, "clients", "ws2s-js"),
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var (name, value) in environment) info.Environment[name] = value;
        using var node = Process.Start(info)!;
        var output = node.StandardOutput.ReadToEndAsync();
        var errors = node.StandardError.ReadToEndAsync();
        await node.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromMinutes(4)).Token);
        var tap = await output;
        Assert.True(node.ExitCode == 0, tap + await errors);
        Assert.Contains("# fail 0", tap);
        Assert.Contains("# skipped 0", tap);
        return tap;
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
            console.log(path.endsWith("dist/ws2s.cjs"), typeof ws2s.WS2S, typeof ws2s.directSockets, JSON.stringify(replies));
            """);
        (exit, output) = await RunAsync("node", Path.Combine(app, "app.cjs"));
        Assert.Equal("true function function [\"OK\",42]", output.Trim());

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

