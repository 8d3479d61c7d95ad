using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Playwright;

namespace Ws2s.Host.Tests;

/// <summary>
/// What the browser tests share: Debian's Chromium, headless, driven by Playwright (one browser per test
/// class, the classes one at a time: the "Chromium" collection), against this server. Screenshots go to
/// TestResults/screenshots.
/// </summary>
public abstract class ChromiumTests : IAsyncLifetime
{
    private IPlaywright _playwright = null!;

    protected IBrowser Browser { get; private set; } = null!;

    protected static string Screenshots => Directory.CreateDirectory(Path.Combine(Repository.Root, "TestResults", "screenshots")).FullName;

    public async Task InitializeAsync()
    {
        Requirements.Need("/usr/bin/chromium", "chromium");
        Assertions.SetDefaultExpectTimeout(15_000); // CI machines are slower than Playwright's 5 s default assumes
        _playwright = await Playwright.CreateAsync();
        Browser = await LaunchAsync();
    }

    /// <summary>A Chromium of its own, with these switches besides the usual ones (the test disposes of it).</summary>
    protected Task<IBrowser> LaunchAsync(params string[] switches) => _playwright.Chromium.LaunchAsync(new()
    {
        ExecutablePath = "/usr/bin/chromium",
        Headless = true,
        // As root, without a sandbox; and no traffic of its own beyond the pages under test.
        Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", .. switches],
    });

    public async Task DisposeAsync()
    {
        if (Browser is not null) await Browser.DisposeAsync();
        _playwright?.Dispose();
    }

    protected static Task<Ws2sHost> StartHostAsync() =>
        Ws2sHost.StartAsync(TestConfig.Loopback);

    /// <summary>The server's own pages (the console) at its address.</summary>
    protected static Uri Page(Ws2sHost host) => new UriBuilder(host.Url) { Scheme = "http" }.Uri;

    /// <summary>
    /// Serves clients/ws2s-js from disk, from a loopback address as a developer's page would be
    /// (Chromium's local network access checks block a page it deems public from reaching 127.0.0.1).
    /// </summary>
    protected static async Task<Microsoft.AspNetCore.Builder.WebApplication> ServeClientLibraryAsync(bool crossOriginIsolated = false)
    {
        var files = Microsoft.AspNetCore.Builder.WebApplication.CreateSlimBuilder();
        files.WebHost.UseUrls("http://127.0.0.1:0");
        var site = files.Build();
        site.UseStaticFiles(new Microsoft.AspNetCore.Builder.StaticFileOptions
        {
            FileProvider = new Microsoft.Extensions.FileProviders.PhysicalFileProvider(Path.Combine(Repository.Root, "clients", "ws2s-js")),
            // Cross-origin isolated pages may measure their own memory (performance.measureUserAgentSpecificMemory).
            OnPrepareResponse = crossOriginIsolated
                ? context =>
                {
                    context.Context.Response.Headers["Cross-Origin-Opener-Policy"] = "same-origin";
                    context.Context.Response.Headers["Cross-Origin-Embedder-Policy"] = "require-corp";
                }
                : _ => { },
        });
        await site.StartAsync();
        return site;
    }
}

[CollectionDefinition("Chromium")]
public sealed class ChromiumCollection;
