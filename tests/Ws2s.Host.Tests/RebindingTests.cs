using System.Net;
using System.Net.Http.Headers;

namespace Ws2s.Host.Tests;

/// <summary>
/// Attack (issue 20, 10): DNS rebinding. A page on a name the attacker controls (rebind.evil.example,
/// first resolving to the attacker, then to 127.0.0.1) is same-origin with ws2s once the name points
/// here, so the browser lets it read every HTTP answer: <c>/metrics</c>, <c>/.ws2s/admission</c>, the
/// console. There was no Host check. Now only the hosts ws2s answers to get an answer (IP literals,
/// <c>localhost</c>, the listen host and <c>allowedHosts</c>); any other name gets 421 with words, on
/// every path and on the upgrade. And <c>/.ws2s/admission</c> answered 1,500 token guesses in 0.6 s:
/// it is rate-limited per client now.
/// </summary>
public sealed class RebindingTests
{
    private static async Task<(HttpStatusCode Status, string Body)> GetAsync(Uri url, string path, string host, bool upgrade = false)
    {
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri($"http://127.0.0.1:{url.Port}{path}"));
        request.Headers.Host = host;
        if (upgrade)
        {
            request.Headers.Connection.Add("Upgrade");
            request.Headers.Upgrade.Add(new ProductHeaderValue("websocket"));
            request.Headers.Add("Sec-WebSocket-Version", "13");
            request.Headers.Add("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
            request.Headers.Add("Origin", $"http://{host}");
        }
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        return (response.StatusCode, response.StatusCode == HttpStatusCode.SwitchingProtocols ? "" : await response.Content.ReadAsStringAsync());
    }

    public static TheoryData<string, bool> Paths => new()
    {
        { "/metrics", false }, { "/healthz", false }, { "/.ws2s/admission", false }, { "/", false }, { "/index.html", false }, { "/", true },
    };

    [Theory]
    [MemberData(nameof(Paths))]
    public async Task A_rebinding_name_gets_421_on_every_path_and_the_upgrade(string path, bool upgrade)
    {
        // origins "*": even a server open to every page answers only to its own host names.
        await using var host = await Ws2sHost.StartAsync(TestConfig.Defaults.With(o => o.Origins = ["*"]));
        foreach (var name in new[] { "rebind.evil.example", "rebind.evil.example:3613", "REBIND.evil.example.", "localhost.evil.example", "127.0.0.1.evil.example" })
        {
            var (status, body) = await GetAsync(host.Url, path, name, upgrade);
            Assert.Equal(HttpStatusCode.MisdirectedRequest, status);
            Assert.StartsWith("ws2s: this server does not answer to the host name ", body);
            Assert.Contains("allowedHosts", body);
        }
        foreach (var name in new[] { $"127.0.0.1:{host.Url.Port}", "localhost", $"LOCALHOST:{host.Url.Port}", "[::1]", "192.0.2.1", "app.localhost" })
            Assert.NotEqual(HttpStatusCode.MisdirectedRequest, (await GetAsync(host.Url, path, name, upgrade)).Status);
    }

    [Fact]
    public async Task The_names_in_allowedHosts_are_answered()
    {
        await using var host = await Ws2sHost.StartAsync(
            TestConfig.Defaults.With(o => o.AllowedHosts = ["ws2s.example.com", "*.tools.example"]));
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(host.Url, "/healthz", "ws2s.example.com")).Status);
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(host.Url, "/healthz", "WS2S.example.com.:443")).Status);
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(host.Url, "/healthz", "a.tools.example")).Status);
        Assert.Equal(HttpStatusCode.MisdirectedRequest, (await GetAsync(host.Url, "/healthz", "tools.example.evil")).Status);
        Assert.Equal(HttpStatusCode.MisdirectedRequest, (await GetAsync(host.Url, "/healthz", "evil-ws2s.example.com")).Status);
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(host.Url, "/healthz", "127.0.0.1")).Status);
    }

    [Fact]
    public async Task Admission_answers_are_readable_by_pages_of_allowed_origins_and_by_no_other()
    {
        await using var host = await Ws2sHost.StartAsync(TestConfig.Defaults.With(o =>
        {
            o.Origins = ["https://app.example"];
            o.Tokens = ["t-3b1c"];
        }));
        using var http = new HttpClient();
        var url = new Uri($"http://127.0.0.1:{host.Url.Port}/.ws2s/admission");
        async Task<HttpResponseMessage> AskAsync(HttpMethod method, string origin)
        {
            using var ask = new HttpRequestMessage(method, url);
            ask.Headers.Add("Origin", origin);
            if (method == HttpMethod.Options)
            {
                ask.Headers.Add("Access-Control-Request-Method", "GET");
                ask.Headers.Add("Access-Control-Request-Headers", "x-ws2s-token");
            }
            else ask.Headers.Add("X-Ws2s-Token", "wrong");
            return await http.SendAsync(ask);
        }
        // The app's own page (a browser preflights the token header) learns why, in the server's words…
        using (var preflight = await AskAsync(HttpMethod.Options, "https://app.example"))
        {
            Assert.Equal(HttpStatusCode.NoContent, preflight.StatusCode);
            Assert.Equal("https://app.example", preflight.Headers.GetValues("Access-Control-Allow-Origin").Single());
            Assert.Contains("X-Ws2s-Token", preflight.Headers.GetValues("Access-Control-Allow-Headers").Single());
        }
        using (var answer = await AskAsync(HttpMethod.Get, "https://app.example"))
        {
            Assert.Equal("https://app.example", answer.Headers.GetValues("Access-Control-Allow-Origin").Single());
            Assert.Contains("\"status\":401", await answer.Content.ReadAsStringAsync());
        }
        // …a page of any other origin may not read it.
        using (var preflight = await AskAsync(HttpMethod.Options, "https://evil.example"))
        {
            Assert.Equal(HttpStatusCode.Forbidden, preflight.StatusCode);
            Assert.False(preflight.Headers.Contains("Access-Control-Allow-Origin"));
        }
        using (var answer = await AskAsync(HttpMethod.Get, "https://evil.example"))
            Assert.False(answer.Headers.Contains("Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task Admission_answers_are_rate_limited_per_client()
    {
        await using var host = await Ws2sHost.StartAsync(TestConfig.Defaults.With(o => o.Tokens = ["the-one-real-token-4d2a"]));
        using var http = new HttpClient();
        var started = DateTime.UtcNow;
        var answered = 0;
        string? refusal = null;
        for (var i = 0; i < 100; i++)
        {
            using var ask = new HttpRequestMessage(HttpMethod.Get, new Uri($"http://127.0.0.1:{host.Url.Port}/.ws2s/admission"));
            ask.Headers.Add("X-Ws2s-Token", $"guess-{i}");
            using var response = await http.SendAsync(ask);
            if (response.StatusCode == HttpStatusCode.OK) answered++;
            else
            {
                Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
                refusal = await response.Content.ReadAsStringAsync();
            }
        }
        var seconds = (DateTime.UtcNow - started).TotalSeconds;
        // A burst of 10, then 2 a second: far from 1,500 guesses in 0.6 s.
        Assert.True(answered <= 10 + 2 * Math.Ceiling(seconds) + 2, $"{answered} answers in {seconds:F1} s");
        Assert.Equal("ws2s: too many admission questions from this client; try again in a second\n", refusal);
        // Another client (another address) still gets its answers.
        var other = await RawHttp.GetAsync(host.Url.Port, "/.ws2s/admission", IPAddress.Parse("127.0.0.7"));
        Assert.StartsWith("HTTP/1.1 200", other);
    }
}

/// <summary>A plain HTTP GET from a chosen source address (any of 127.0.0.0/8).</summary>
internal static class RawHttp
{
    public static async Task<string> GetAsync(int port, string path, IPAddress source)
    {
        using var tcp = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        tcp.Bind(new IPEndPoint(source, 0));
        await tcp.ConnectAsync(IPAddress.Loopback, port);
        await using var stream = new System.Net.Sockets.NetworkStream(tcp, ownsSocket: false);
        await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
        using var reader = new StreamReader(stream);
        using var patience = new CancellationTokenSource(WsClient.Patience);
        return await reader.ReadToEndAsync(patience.Token);
    }
}
