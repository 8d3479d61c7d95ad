using System.Net;
using System.Net.WebSockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Ws2s.Host.Tests;

/// <summary>
/// ws2s embedded in an application (samples/Ws2s.Sample): <c>AddWs2s</c> + <c>MapWs2s("/ws2s")</c>
/// behind the app's own cookie authentication, each user narrowed to their destinations.
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
}
