using System.Net;
using System.Net.WebSockets;

namespace Ws2s.Host.Tests;

/// <summary>
/// The sample app as a newcomer meets it: started with samples/README.md's command, it says where it
/// listens and how to sign in; the README's sign-in and session steps then work as written, against
/// the app's own appsettings.json. (EmbeddingTests checks the same app's authorization in process.)
/// </summary>
public sealed class SampleTests(SampleTests.Sample sample) : IClassFixture<SampleTests.Sample>
{
    /// <summary>The address samples/README.md shows (the default of <c>dotnet run</c>); the test's sample listens on a free port instead.</summary>
    private const string ReadmeBase = "http://localhost:5000";

    /// <summary><c>dotnet run --project samples/Ws2s.Sample</c>, as the README says, on a free loopback port.</summary>
    public sealed class Sample : IAsyncLifetime
    {
        private WatchedProcess _process = null!;

        public WatchedProcess Process => _process;

        public string Readme { get; private set; } = "";

        /// <summary>Where the sample said it listens (http://127.0.0.1:PORT).</summary>
        public string Base { get; private set; } = "";

        public string ListeningLine { get; private set; } = "";

        public string SignInLine { get; private set; } = "";

        public async Task InitializeAsync()
        {
            Readme = await File.ReadAllTextAsync(Path.Combine(Repository.Root, "samples", "README.md"));
            // --no-build: the test project has built the sample already, in the configuration of the tests.
            var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";
            _process = WatchedProcess.Start("dotnet", ["run", "--no-build", "-c", configuration, "--project", "samples/Ws2s.Sample", "--", "--urls", "http://127.0.0.1:0"],
                workingDirectory: Repository.Root);
            ListeningLine = await _process.WaitForLineAsync(l => l.StartsWith("ws2s sample: listening on ", StringComparison.Ordinal));
            Base = ListeningLine["ws2s sample: listening on ".Length..].Split(',')[0];
            SignInLine = await _process.WaitForLineAsync(l => l.StartsWith("ws2s sample: sign in", StringComparison.Ordinal));
        }

        public async Task DisposeAsync() => await _process.DisposeAsync();
    }

    private string WsBase => "ws" + sample.Base["http".Length..];

    /// <summary>A line as the README shows it: at the README's address.</summary>
    private string AsInReadme(string line) => line.Replace(WsBase, "ws" + ReadmeBase["http".Length..]).Replace(sample.Base, ReadmeBase);

    [Fact]
    public void At_start_the_sample_says_where_it_listens_and_how_to_sign_in_and_the_readme_shows_those_lines()
    {
        Assert.Matches(@"^http://127\.0\.0\.1:\d+$", sample.Base);
        Assert.Equal($"ws2s sample: listening on {sample.Base}, ws2s at {WsBase}/ws2s", sample.ListeningLine);
        Assert.Equal($"ws2s sample: sign in with a form POST to {sample.Base}/login (fields user and password; users: alice, bob), " +
            $"then open {WsBase}/ws2s with the cookie it sets: see samples/README.md", sample.SignInLine);
        Assert.DoesNotContain("change me", sample.Process.Output); // a password is never printed

        Assert.Contains("dotnet run --project samples/Ws2s.Sample\n", sample.Readme);
        Assert.Contains(AsInReadme(sample.ListeningLine) + "\n", sample.Readme);
        Assert.Contains(AsInReadme(sample.SignInLine) + "\n", sample.Readme);
    }

    [Fact]
    public async Task The_readmes_sign_in_gives_a_cookie_that_opens_a_session_narrowed_to_the_users_destinations()
    {
        // Step 2 of the README, as written: the form POST curl sends.
        Assert.Contains($"curl -i -d user=alice -d \"password=change me\" {ReadmeBase}/login\n", sample.Readme);
        using var http = new HttpClient(new HttpClientHandler { UseCookies = false });
        using var wrong = await http.PostAsync($"{sample.Base}/login", new FormUrlEncodedContent(new Dictionary<string, string> { ["user"] = "alice", ["password"] = "guess" }));
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        Assert.False(wrong.Headers.Contains("Set-Cookie"));
        using var login = await http.PostAsync($"{sample.Base}/login", new FormUrlEncodedContent(new Dictionary<string, string> { ["user"] = "alice", ["password"] = "change me" }));
        Assert.Equal(HttpStatusCode.NoContent, login.StatusCode);
        Assert.Contains("HTTP/1.1 204 No Content", sample.Readme);
        var cookie = login.Headers.GetValues("Set-Cookie").Single().Split(';')[0];
        Assert.StartsWith(".AspNetCore.Cookies=", cookie);
        Assert.Contains("Set-Cookie: .AspNetCore.Cookies=", sample.Readme);

        // Step 3: the upgrade without the cookie is refused by the app; with it, a session bound to alice's destinations.
        var refused = new ClientWebSocket();
        refused.Options.SetRequestHeader("Origin", sample.Base);
        refused.Options.CollectHttpResponseDetails = true;
        await Assert.ThrowsAsync<WebSocketException>(() => refused.ConnectAsync(new Uri($"{WsBase}/ws2s"), CancellationToken.None));
        Assert.Equal(HttpStatusCode.Unauthorized, refused.HttpStatusCode);
        var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Origin", sample.Base);
        socket.Options.SetRequestHeader("Cookie", cookie);
        await socket.ConnectAsync(new Uri($"{WsBase}/ws2s"), CancellationToken.None);
        await using var alice = WsClient.Wrap(socket);
        await alice.SendAsync(new { command = "connect", host = "127.0.0.1", port = 5432 }); // bob's
        await alice.ExpectAsync("""{"success":false,"code":4,"message":"ws2s refuse to connect target host: 127.0.0.1, cause that's a dangerous operation (not in this session's scope)"}""");
    }

    [SkippableFact]
    public async Task The_readmes_node_script_signs_in_and_opens_a_session_as_the_readme_says_it_will()
    {
        Requirements.Need("/usr/bin/node", "nodejs");
        var section = sample.Readme[sample.Readme.IndexOf("## 3.", StringComparison.Ordinal)..];
        var start = section.IndexOf("```js\n", StringComparison.Ordinal) + "```js\n".Length;
        var script = section[start..section.IndexOf("```", start, StringComparison.Ordinal)];
        Assert.Contains($"const base = \"{ReadmeBase}\";", script);
        var node = await Command.RunAsync("node", ["--experimental-websocket", "--input-type=module", "-e", script.Replace(ReadmeBase, sample.Base)]);
        var lines = node.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 3, node.Printed);
        Assert.Equal("sign in: 204", lines[0]);
        Assert.Equal("4 ws2s refuse to connect target host: 127.0.0.1, cause that's a dangerous operation (not in this session's scope)", lines[1]);
        // Alice's own Redis: reached when one listens on 127.0.0.1:6379, else refused by the machine — either way ws2s let her through.
        Assert.Contains(lines[2], new[] { "0 connect done", "2 connection refused" });
        // The README says what to expect, in these words.
        foreach (var line in lines[..2]) Assert.Contains(line + "\n", sample.Readme);
        Assert.Contains("2 connection refused", sample.Readme);
        Assert.Contains("0 connect done", sample.Readme);
    }
}
