using System.Text.Json;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Ws2s.Host.Tests;

/// <summary>
/// ws2s.js's Direct Sockets classes in Chromium (a page, not an Isolated Web App: it has no TCPSocket of its own): the
/// suite Node runs too, and the page's memory while 64 MiB go through a slow consumer.
/// </summary>
[Collection("Chromium")]
public sealed class DirectSocketsBrowserTests(ITestOutputHelper output) : ChromiumTests
{
    [SkippableFact]
    public async Task The_Direct_Sockets_suite_passes_in_Chromium_over_ws2s_binary_mode_and_over_Wisp()
    {
        await using var redis = await RedisServer.StartAsync();
        using var echo = Peer.Echo();
        using var greeter = Peer.Greeter();
        using var refused = new RefusedPort();
        using var udpEcho = new UdpEcho();
        using var denied = new RefusedPort();
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback.With(o =>
        {
            o.Udp.Enabled = true;
            o.Destinations.Deny = [$"127.0.0.1:{denied.Port}"];
        }));
        await using var site = await ServeClientLibraryAsync();
        var page = await Browser.NewPageAsync();
        var console = new List<string>();
        page.Console += (_, message) => console.Add(message.Text);
        await page.GotoAsync($"{site.Urls.First()}/test/direct-sockets.html?url={Uri.EscapeDataString(host.Url.ToString())}"
            + $"&echo={echo.Port}&greeter={greeter.Port}&udp={udpEcho.Port}&refused={refused.Port}&denied={denied.Port}&redis={redis.Port}");
        await page.WaitForFunctionAsync("() => window.results !== undefined", null, new() { Timeout = 90_000 });
        var results = await page.EvaluateAsync<JsClientBrowserTests.Result[]>("() => window.results");
        Assert.Equal(15, results.Length);
        Assert.All(results, r => Assert.True(r.Ok, $"{r.Name}: {r.Error}\nbrowser console:\n{string.Join("\n", console)}"));
    }

    [SkippableFact]
    public async Task Auto_chooses_Wisp_from_a_page_of_the_servers_own_origin_as_it_does_from_another_allowed_origin()
    {
        await using var host = await StartHostAsync(); // default origins: loopback pages on any port
        await using var site = await ServeClientLibraryAsync();
        var page = await Browser.NewPageAsync();

        // Another (allowed) origin.
        await page.GotoAsync($"{site.Urls.First()}/README.md");
        var fromElsewhere = await page.EvaluateAsync<string>(
            "async (url) => (await import('/ws2s.js')).directSockets(url).transport", host.Url.ToString());
        // The server's own origin (its console's page; the same library at /lib/): a same-origin fetch sends no Origin, so
        // ws2s.js names the page's in X-Ws2s-Origin, as it does when it asks why a session was refused.
        await page.GotoAsync(Page(host).ToString());
        var fromOwnOrigin = await page.EvaluateAsync<string>(
            "async (url) => (await import('/lib/ws2s.js')).directSockets(url).transport", host.Url.ToString());
        Assert.Equal("wisp", fromElsewhere);
        Assert.Equal("wisp", fromOwnOrigin);
    }

    [SkippableFact]
    public async Task A_64_MiB_pipe_through_a_slow_consumer_keeps_the_pages_memory_bounded_where_an_unbounded_socket_holds_it_all()
    {
        const long bytes = 64L << 20;
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback);
        await using var site = await ServeClientLibraryAsync(crossOriginIsolated: true);
        // Its own Chromium: one that measures a page's memory when asked (not at its next GC, up to 20 s later).
        await using var browser = await LaunchAsync("--enable-blink-features=ForceEagerMeasureMemory");

        var bounded = await PipeAsync(browser, host, site.Urls.First(), bounded: true, bytes);
        var unbounded = await PipeAsync(browser, host, site.Urls.First(), bounded: false, bytes);
        output.WriteLine($"64 MiB through a slow consumer in Chromium: the page's memory grew by at most {Mib(bounded.Grew)} MiB "
            + $"(held unread at most {Mib(bounded.HeldMost)} MiB, {bounded.Ms} ms); without the bound (resumable: false) by "
            + $"{Mib(unbounded.Grew)} MiB (held unread {Mib(unbounded.HeldMost)} MiB, {unbounded.Ms} ms)");
        // The page's memory grows by the window and the streams' chunks, not by the stream.
        Assert.True(bounded.HeldMost <= 2L << 20, $"held {Mib(bounded.HeldMost)} MiB unread");
        Assert.True(bounded.Grew < 8L << 20, $"the page's memory grew by {Mib(bounded.Grew)} MiB");
        // The measures see what an unbounded socket holds (else the bounds above would prove nothing).
        Assert.True(unbounded.HeldMost > 8L << 20, $"the baseline held only {Mib(unbounded.HeldMost)} MiB unread");
    }

    private static string Mib(long value) => (value / 1048576.0).ToString("F1");

    private sealed record Pipe(long Grew, long HeldMost, long Ms);

    /// <summary>
    /// One pipe (test/direct-sockets-pipe.html) from a source peer to a sink peer in a new page, which measures its memory
    /// before and every 2 MiB: how far it grew, and the most held unread. The sink must get every byte, in order.
    /// </summary>
    private static async Task<Pipe> PipeAsync(IBrowser browser, Ws2sHost host, string site, bool bounded, long bytes)
    {
        using var source = Peer.Source(bytes);
        var sunk = new TaskCompletionSource<(long Length, string Sha256)>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sink = Peer.Sink(sunk);
        var page = await browser.NewPageAsync();
        await page.GotoAsync($"{site}/test/direct-sockets-pipe.html?url={Uri.EscapeDataString(host.Url.ToString())}"
            + $"&source={source.Port}&sink={sink.Port}&bounded={(bounded ? 1 : 0)}");
        await page.WaitForFunctionAsync("() => typeof window.go === 'function'");
        Assert.True(await page.EvaluateAsync<bool>("() => crossOriginIsolated"), "the page is not cross-origin isolated: it cannot measure its memory");
        await page.EvaluateAsync("() => window.go()");
        await page.WaitForFunctionAsync("() => window.pipe !== undefined", null, new() { Timeout = 90_000, PollingInterval = 100 });
        var pipe = await page.EvaluateAsync<JsonElement>("() => window.pipe");
        Assert.False(pipe.TryGetProperty("error", out var error), error.ToString());
        Assert.Equal(bytes, pipe.GetProperty("bytes").GetInt64());
        var (length, sha256) = await sunk.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(bytes, length);
        Assert.Equal(Peer.PatternSha256(bytes), sha256);
        await page.CloseAsync();
        return new Pipe(pipe.GetProperty("memoryMost").GetInt64() - pipe.GetProperty("memoryBefore").GetInt64(),
            pipe.GetProperty("heldMost").GetInt64(), pipe.GetProperty("ms").GetInt64());
    }
}
