using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace Ws2s.Host.Tests;

/// <summary>
/// libcurl.js (npm; curl and mbedTLS in WebAssembly, code nobody here wrote) in Chromium, fetching pages from local
/// servers through ws2s over Wisp and over wsproxy: HTTP, and HTTPS with TLS inside the page (ws2s carries ciphertext).
/// The page is tests/Ws2s.Host.Tests/wisp/libcurl-page.html; libcurl.js has no way to trust another CA, so the page adds
/// the test CA to the bundle in its memory.
/// </summary>
[Collection("Chromium")]
public sealed class LibcurlBrowserTests : ChromiumTests
{
    /// <summary>libcurl.js 0.7.4 from the npm registry (see <see cref="Npm"/>).</summary>
    private static async Task<string> PackageAsync() => Path.Combine(await Npm.InstallAsync("libcurl.js@0.7.4"), "libcurl.js");

    /// <summary>A local web server on 127.0.0.1 answering every request with <paramref name="words"/>; HTTPS with <paramref name="certificate"/>.</summary>
    private static async Task<WebApplication> TargetAsync(string words, X509Certificate2? certificate = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0, listen =>
        {
            if (certificate is not null) listen.UseHttps(new HttpsConnectionAdapterOptions { ServerCertificate = certificate });
        }));
        var app = builder.Build();
        app.Run(context => context.Response.WriteAsync($"{words}, {context.Request.Method} {context.Request.Path}, tls={(context.Request.IsHttps ? "yes" : "no")}"));
        await app.StartAsync();
        return app;
    }

    /// <summary>The page, libcurl.js and its wasm, and the test CA, served from 127.0.0.1.</summary>
    private static async Task<WebApplication> PageSiteAsync(string package, string caFile)
    {
        var folder = Directory.CreateTempSubdirectory("ws2s-libcurl-page-").FullName;
        File.Copy(Path.Combine(Repository.Root, "tests", "Ws2s.Host.Tests", "wisp", "libcurl-page.html"), Path.Combine(folder, "index.html"));
        foreach (var file in new[] { "libcurl.js", "libcurl.wasm" }) File.Copy(Path.Combine(package, file), Path.Combine(folder, file));
        File.Copy(caFile, Path.Combine(folder, "ca.pem"));
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var site = builder.Build();
        var types = new Microsoft.AspNetCore.StaticFiles.FileExtensionContentTypeProvider();
        types.Mappings[".pem"] = "application/x-pem-file";
        site.UseStaticFiles(new StaticFileOptions { FileProvider = new Microsoft.Extensions.FileProviders.PhysicalFileProvider(folder), ContentTypeProvider = types });
        await site.StartAsync();
        return site;
    }

    [SkippableTheory]
    [InlineData("wisp", false)]
    [InlineData("wisp", true)]
    [InlineData("wsproxy", false)]
    [InlineData("wsproxy", true)]
    public async Task Libcurl_js_in_Chromium_fetches_a_local_page_through_ws2s(string transport, bool https)
    {
        var package = await PackageAsync();
        using var pki = new TestPki();
        await using var target = await TargetAsync("hello from the target", https ? pki.Leaf : null);
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback.With(o => o.Wsproxy.Path = "/wisp/"));
        await using var site = await PageSiteAsync(package, pki.CaFile);
        var targetUrl = new UriBuilder(target.Urls.First()) { Scheme = https ? "https" : "http" }.Uri;
        var ws = new Uri(host.Url, "/wisp/");
        var page = await Browser.NewPageAsync();
        await page.GotoAsync($"{site.Urls.First()}/index.html?ws={Uri.EscapeDataString(ws.ToString())}&transport={transport}"
            + $"&url={Uri.EscapeDataString(new Uri(targetUrl, "/through-ws2s").ToString())}" + (https ? "&ca=ca.pem&verbose=1" : ""));
        await page.WaitForFunctionAsync("() => window.__done === true", null, new() { Timeout = 60_000 });
        var result = JsonDocument.Parse(await page.EvaluateAsync<string>("() => JSON.stringify(window.__result)")).RootElement;
        Assert.True(result.GetProperty("ok").GetBoolean(), result.ToString());
        Assert.Equal(200, result.GetProperty("status").GetInt32());
        Assert.Equal($"hello from the target, GET /through-ws2s, tls={(https ? "yes" : "no")}", result.GetProperty("body").GetString());
    }
}
