using System.Net;
using System.Net.WebSockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Ws2s.AspNetCore.Tests;

/// <summary>
/// ws2s embedded in an application (samples/Ws2s.Sample): <c>AddWs2s</c> + <c>MapWs2s("/ws2s")</c>
/// behind the app's own cookie authentication, each user narrowed to their destinations; and its listeners
/// with ws2s's connection gate and PROXY protocol support.
/// </summary>
public sealed class EmbeddingTests : IAsyncLifetime
{
    private readonly Peer _alicesService = Peer.Echo();
    private readonly Peer _bobsService = Peer.Echo();
    private WebApplication _app = null!;
    private Uri _url = null!;

    public async Task InitializeAsync()
    {
        _app = Sample.SampleApp.Build([
            "--urls", "http://127.0.0.1:0",
            "--Users:alice:Password", "alice's secret", "--Users:alice:Destinations:0", $"127.0.0.1:{_alicesService.Port}",
            "--Users:bob:Password", "bob's secret", "--Users:bob:Destinations:0", $"127.0.0.1:{_bobsService.Port}",
        ]);
        await _app.StartAsync();
        _url = new Uri(_app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
    }

    public async Task DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _alicesService.Dispose();
        _bobsService.Dispose();
    }

    /// <summary>Signs in and returns the session cookie.</summary>
    private async Task<string> SignInAsync(string user, string password)
    {
        using var http = new HttpClient(new HttpClientHandler { UseCookies = false });
        var response = await http.PostAsync(new Uri(_url, "/login"), new FormUrlEncodedContent(new Dictionary<string, string> { ["user"] = user, ["password"] = password }));
        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        return string.Join("; ", response.Headers.GetValues("Set-Cookie").Select(c => c.Split(';')[0]));
    }

    private async Task<WsClient> OpenAsync(string? cookie)
    {
        var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Origin", "http://localhost:8080");
        if (cookie is not null) socket.Options.SetRequestHeader("Cookie", cookie);
        socket.Options.CollectHttpResponseDetails = true;
        try
        {
            await socket.ConnectAsync(new Uri(_url.ToString().Replace("http://", "ws://") + "ws2s"), CancellationToken.None);
        }
        catch (WebSocketException)
        {
            throw new HttpRequestException($"the upgrade was refused with {socket.HttpStatusCode}", null, socket.HttpStatusCode);
        }
        return WsClient.Wrap(socket);
    }

    /// <summary>Attack (issue 21, review): a typo in the app's "Ws2s" section was a rule nobody read.</summary>
    [Fact]
    public async Task A_misspelt_key_in_the_apps_ws2s_section_stops_the_app_naming_it()
    {
        // Refused while the app is built or at its start, whichever first reads the options: never served.
        var refused = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(async () =>
        {
            await using var app = Sample.SampleApp.Build(["--urls", "http://127.0.0.1:0", "--Ws2s:destinatons:allow:0", "127.0.0.1:6379"]);
            await app.StartAsync();
        });
        Assert.Contains("unknown key 'destinatons.allow[0]' (on the command line as --Ws2s:destinatons:allow:0)", refused.Message);
        Assert.Contains("did you mean 'destinations.allow[0]' (--Ws2s:destinations:allow:0)?", refused.Message);
    }

    [Fact]
    public async Task An_upgrade_without_signing_in_gets_401_from_the_apps_own_authorization()
    {
        var refused = await Assert.ThrowsAsync<HttpRequestException>(() => OpenAsync(cookie: null));
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        // A wrong password gets no cookie either.
        using var http = new HttpClient();
        var login = await http.PostAsync(new Uri(_url, "/login"), new FormUrlEncodedContent(new Dictionary<string, string> { ["user"] = "alice", ["password"] = "guess" }));
        Assert.Equal(HttpStatusCode.Unauthorized, login.StatusCode);
    }

    [Fact]
    public async Task A_signed_in_user_reaches_their_own_destination_and_no_one_elses()
    {
        await using var alice = await OpenAsync(await SignInAsync("alice", "alice's secret"));
        await alice.EchoThroughAsync(_alicesService.Port, "hello");

        // Bob's service is allowed by the server's policy (127.0.0.1), but not in Alice's scope.
        await alice.SendAsync(new { command = "connect", host = "127.0.0.1", port = _bobsService.Port });
        await alice.ExpectAsync($$"""{"success":false,"code":4,"message":"ws2s refuse to connect target host: 127.0.0.1, cause that's a dangerous operation (not in this session's scope)"}""");
    }

    /// <summary>Starts another sample app with <paramref name="args"/> (on loopback port 0), and its address.</summary>
    private static async Task<(WebApplication App, Uri Url)> StartSampleAsync(params string[] args)
    {
        var app = Sample.SampleApp.Build(["--urls", "http://127.0.0.1:0", "--Users:alice:Password", "alice's secret", .. args]);
        await app.StartAsync();
        return (app, new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()));
    }

    private static async Task<string> ExchangeAsync(Uri url, string bytes)
    {
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, url.Port);
        if (bytes.Length > 0) await socket.SendAsync(System.Text.Encoding.ASCII.GetBytes(bytes));
        return await EmbeddedApp.ReadToEndAsync(socket);
    }

    /// <summary>Attack: silent connections held open against the sample (Kestrel alone would keep each over two minutes).</summary>
    [Fact]
    public async Task The_sample_cuts_a_silent_connection_after_the_handshake_timeout()
    {
        var (app, url) = await StartSampleAsync("--Ws2s:limits:handshakeTimeoutSeconds", "1");
        await using (app)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            Assert.Equal("", await ExchangeAsync(url, ""));
            Assert.True(clock.Elapsed < WsClient.Patience, "the silent connection was never closed");
        }
    }

    /// <summary>The sample behind a load balancer it trusts takes the client from its PROXY header; anyone else's header is refused.</summary>
    [Fact]
    public async Task The_sample_reads_a_proxy_header_from_a_trusted_proxy_only()
    {
        const string login = "POST /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            + "Content-Length: 36\r\n\r\nuser=alice&password=alice%27s+secret";
        const string header = "PROXY TCP4 203.0.113.7 127.0.0.1 40000 80\r\n";
        var (trusting, trustingUrl) = await StartSampleAsync("--Ws2s:trustedProxies:0", "127.0.0.1");
        await using (trusting)
            Assert.StartsWith("HTTP/1.1 204", await ExchangeAsync(trustingUrl, header + login));
        var (untrusting, untrustingUrl) = await StartSampleAsync();
        await using (untrusting)
        {
            Assert.StartsWith("HTTP/1.1 400", await ExchangeAsync(untrustingUrl, header + login));
            Assert.StartsWith("HTTP/1.1 204", await ExchangeAsync(untrustingUrl, login));
        }
    }
}
