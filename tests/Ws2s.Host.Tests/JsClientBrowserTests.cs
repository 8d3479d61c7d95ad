using Microsoft.AspNetCore.Builder;
using Microsoft.Playwright;

namespace Ws2s.Host.Tests;

/// <summary>ws2s.js in Chromium: its live suite, pages written for ws2s.js 2.1.4, and what a refused page learns.</summary>
[Collection("Chromium")]
public sealed class JsClientBrowserTests : ChromiumTests
{
    [SkippableFact]
    public async Task The_ws2s_js_live_suite_passes_in_Chromium_too()
    {
        await using var redis = await RedisServer.StartAsync();
        using var pki = new TestPki();
        await using var tlsRedis = await RedisServer.StartAsync(pki);
        using var echo = Peer.Echo();
        using var refused = new RefusedPort();
        using var udpEcho = new UdpEcho();
        await using var host = await Ws2sHost.StartAsync(
            TestConfig.Loopback.With(o =>
            {
                o.Tls.TrustedCertificates = [pki.CaFile];
                o.Udp.Enabled = true;
            }));
        var page = await Browser.NewPageAsync();
        var console = new List<string>();
        page.Console += (_, message) => console.Add(message.Text);
        await using var site = await ServeClientLibraryAsync();
        var origin = site.Urls.First();
        await page.GotoAsync($"{origin}/test/browser.html?url={Uri.EscapeDataString(host.Url.ToString())}&echo={echo.Port}&redis={redis.Port}&refused={refused.Port}&tlsredis={tlsRedis.Port}&udp={udpEcho.Port}");
        await page.WaitForFunctionAsync("() => window.results !== undefined", null, new() { Timeout = 60_000 });
        var results = await page.EvaluateAsync<Result[]>("() => window.results");
        Assert.Equal(19, results.Length);
        Assert.All(results, r => Assert.True(r.Ok, $"{r.Name}: {r.Error}\nbrowser console:\n{string.Join("\n", console)}"));
    }

    [SkippableFact]
    public async Task A_page_written_for_ws2s_js_2_1_4_works_unchanged_with_the_classic_script_build()
    {
        using var echo = Peer.Echo();
        await using var host = await StartHostAsync();
        await using var site = await ServeClientLibraryAsync();
        var page = await Browser.NewPageAsync();
        await page.GotoAsync($"{site.Urls.First()}/test/classic.html?url={Uri.EscapeDataString(host.Url.ToString())}&echo={echo.Port}");
        await page.WaitForFunctionAsync("() => window.result !== undefined", null, new() { Timeout = 30_000 });
        Assert.Equal("hello from a classic script", await page.EvaluateAsync<string>("() => window.result"));
        // The new names are there too, under the one global (the page's own `ws2s` variable untouched).
        Assert.True(await page.EvaluateAsync<bool>("() => typeof WS2S.RespParser === 'function' && typeof WS2S.Ws2sError === 'function' && ws2s instanceof WS2S"));
        // Direct Sockets from the classic script too: the classes, over ws2s, to the same echo.
        Assert.Equal("echoed by a classic page", await page.EvaluateAsync<string>("""
            async ([url, port]) => {
              const { TCPSocket } = WS2S.directSockets(url, { transport: "ws2s" });
              const socket = new TCPSocket("127.0.0.1", port);
              const { readable, writable } = await socket.opened;
              const writer = writable.getWriter();
              await writer.write(new TextEncoder().encode("echoed by a classic page"));
              const reader = readable.getReader();
              const { value } = await reader.read();
              reader.releaseLock();
              writer.releaseLock();
              await socket.close();
              return new TextDecoder().decode(value);
            }
            """, new object[] { host.Url.ToString(), echo.Port }));
    }

    [SkippableFact]
    public async Task A_page_on_another_origin_that_the_server_refuses_learns_from_ws2s_js_what_to_check()
    {
        // The page may not read the server's answer from another origin (no CORS), so ws2s.js says what to check.
        await using var host = await Ws2sHost.StartAsync(
            TestConfig.Defaults.With(o => o.Origins = ["https://elsewhere.example"]));
        await using var site = await ServeClientLibraryAsync();
        var page = await Browser.NewPageAsync();
        var origin = site.Urls.First();
        await page.GotoAsync($"{origin}/test/refused.html?url={Uri.EscapeDataString(host.Url.ToString())}");
        await page.WaitForFunctionAsync("() => window.result !== undefined", null, new() { Timeout = 30_000 });
        var result = await page.EvaluateAsync<string[]>("() => window.result");
        var server = host.Url.Authority;
        Assert.Equal(
            ["Ws2sOpenError", "error",
             $"cannot open {host.Url}, and the server could not be asked why (http://{server}/.ws2s/admission failed: TypeError: Failed to fetch): "
             + $"is ws2sd running at {server}, is the token right, and is this page's origin {new Uri(origin).GetLeftPart(UriPartial.Authority)} in the server's 'origins'?"],
            result);
    }

    [SkippableFact]
    public async Task A_page_written_for_ws2s_js_2_1_4_gets_every_callback_as_2_1_4_gives_it()
    {
        await using var redis = await RedisServer.StartAsync();
        Assert.Equal("OK", await redis.CommandAsync("CONFIG SET requirepass legacy-secret"));
        using var echo = Peer.Echo();
        using var refused = new RefusedPort();
        await using var host = await StartHostAsync();
        await using var site = await ServeClientLibraryAsync();
        var page = await Browser.NewPageAsync();
        await page.GotoAsync($"{site.Urls.First()}/test/legacy.html?url={Uri.EscapeDataString(host.Url.ToString())}&echo={echo.Port}"
            + $"&refused={refused.Port}&redis={redis.Port}&password=legacy-secret&dead={Uri.EscapeDataString($"ws://127.0.0.1:{refused.Port}/")}");
        var finished = true;
        try
        {
            await page.WaitForFunctionAsync("() => window.finished === true", null, new() { Timeout = 60_000 });
        }
        catch (TimeoutException)
        {
            finished = false;
        }
        var transcript = System.Text.Json.Nodes.JsonNode.Parse(await page.EvaluateAsync<string>("() => JSON.stringify(window.transcript)"));
        var expected = System.Text.Json.Nodes.JsonNode.Parse(await File.ReadAllTextAsync(
            Path.Combine(Repository.Root, "clients", "ws2s-js", "test", "legacy-2.1.4.expected.json")));
        Assert.True(System.Text.Json.Nodes.JsonNode.DeepEquals(expected, transcript),
            $"{(finished ? "" : "timed out; ")}the transcript:\n{transcript?.ToJsonString()}");
    }

    public sealed class Result
    {
        public string Name { get; set; } = "";
        public bool Ok { get; set; }
        public string? Error { get; set; }
    }
}
