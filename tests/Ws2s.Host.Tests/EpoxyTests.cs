using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace Ws2s.Host.Tests;

/// <summary>
/// epoxy-tls (npm; MercuryWorkshop's Rust Wisp client in WebAssembly, code nobody here wrote, AGPL: installed at test time,
/// never copied in) fetching a local page through ws2s's Wisp endpoint, over v2 and over v1.
/// </summary>
public sealed class EpoxyTests
{
    [SkippableTheory]
    [InlineData("2")]
    [InlineData("1")]
    public async Task The_epoxy_client_fetches_a_local_page_through_ws2s(string version)
    {
        Requirements.Need("/usr/bin/node", "nodejs");
        var modules = await Npm.InstallAsync("@mercuryworkshop/epoxy-tls@2.1.19-1");
        var site = WebApplication.CreateSlimBuilder();
        site.WebHost.UseUrls("http://127.0.0.1:0");
        await using var page = site.Build();
        page.Run(context => context.Response.WriteAsync($"hello from a local page, {context.Request.Path}"));
        await page.StartAsync();
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback.With(o => o.Origins = ["*"]));
        var script = Path.Combine(Repository.Root, "tests", "Ws2s.Host.Tests", "wisp", "epoxy-client.mjs");
        var run = await Command.RunAsync("node", ["--experimental-websocket", script, "--modules", modules, "--version", version,
            "--wisp", new Uri(host.Url, "/wisp/").ToString(), "--url", new Uri(new Uri(page.Urls.First()), "/through-ws2s").ToString()]);
        var line = run.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault();
        Assert.True(line is not null, run.Printed);
        var result = JsonNode.Parse(line)!;
        Assert.True(result["ok"]?.GetValue<bool>() == true, run.Printed);
        Assert.Equal(200, result["status"]!.GetValue<int>());
        Assert.Equal("hello from a local page, /through-ws2s", result["body"]!.GetValue<string>());
    }
}
