using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Ws2s.Host.Tests;

/// <summary>
/// Resumable sessions (issue 25) against the real server: a connection that outlives its client's WebSocket, cut by a
/// TCP proxy between the client and ws2s that is reset mid-transfer; and the attacks on resume tokens.
/// </summary>
public sealed class ResumeTests
{
    private static TestConfig Config(Action<Ws2s.AspNetCore.Configuration.Ws2sOptions>? more = null) => TestConfig.Loopback.With(o =>
    {
        o.Resume.Instance = "t1";
        more?.Invoke(o);
    });

    /// <summary>
    /// The issue's test: 64 MiB echoed through a proxy that is reset and started again three times mid-transfer. What the
    /// client got hashes as what it sent, and the peer saw one connection.
    /// </summary>
    [Fact]
    public async Task A_64_MiB_echo_through_a_proxy_reset_three_times_loses_and_repeats_nothing()
    {
        await using var host = await Ws2sHost.StartAsync(Config());
        var accepted = 0;
        using var echo = new Peer(async (socket, stop) =>
        {
            Interlocked.Increment(ref accepted);
            var buffer = new byte[64 * 1024];
            int read;
            while ((read = await socket.ReceiveAsync(buffer, SocketFlags.None, stop)) > 0)
                await socket.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, stop);
            socket.Shutdown(SocketShutdown.Send);
        });
        using var proxy = new ResettingProxy(host.Url.Port);
        const long total = 64L << 20;
        var client = new ResumingClient(new Uri($"ws://127.0.0.1:{proxy.Port}/"), echo.Port, total);
        var cuts = 0;
        client.Progress = received =>
        {
            if (cuts < 3 && received >= (cuts + 1) * (16L << 20))
            {
                cuts++;
                proxy.Reset();
            }
        };
        var (got, sha256) = await client.RunAsync().WaitAsync(TimeSpan.FromMinutes(3));
        Assert.Equal(total, got);
        Assert.Equal(Peer.PatternSha256(total), sha256);
        Assert.Equal(3, cuts);
        Assert.True(client.Resumes >= 3, $"{client.Resumes} resumes");
        Assert.Equal(1, Volatile.Read(ref accepted));
    }

    /// <summary>A close frame ends a resumable session as before: the peer's connection is closed.</summary>
    [Fact]
    public async Task A_close_frame_ends_a_resumable_session_and_its_connection()
    {
        await using var host = await Ws2sHost.StartAsync(Config());
        var ended = new TaskCompletionSource<(long, string)>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sink = Peer.Sink(ended);
        var client = await host.ConnectAsync();
        await ConnectResumableAsync(client, sink.Port);
        await client.DisposeAsync(); // a close frame
        await ended.Task.WaitAsync(WsClient.Patience);
    }

    /// <summary>A session lost without a close waits for its grace, then closes its connection.</summary>
    [Fact]
    public async Task A_suspended_session_closes_its_connection_when_its_grace_ends_and_its_token_is_then_refused()
    {
        await using var host = await Ws2sHost.StartAsync(Config(o => o.Resume.GraceSeconds = 1));
        var ended = new TaskCompletionSource<(long, string)>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sink = Peer.Sink(ended);
        var client = await host.ConnectAsync();
        var token = await ConnectResumableAsync(client, sink.Port);
        client.Socket.Abort();
        await ended.Task.WaitAsync(WsClient.Patience);
        await using var late = await host.ConnectAsync();
        await late.SendAsync(new { command = "resume", token, received = 0 });
        await late.ExpectAsync("""{"success":false,"code":9,"message":"resume failed: no session holds this token"}""");
    }

    /// <summary>
    /// A session resumed while the server still has its old WebSocket (it has not seen it go): the old one is let go, the
    /// new one hears what it missed, and the session goes on with it.
    /// </summary>
    [Fact]
    public async Task A_resume_takes_the_session_over_from_a_WebSocket_the_server_still_has()
    {
        await using var host = await Ws2sHost.StartAsync(Config());
        using var echo = Peer.Echo();
        await using var old = await host.ConnectAsync();
        var token = await ConnectResumableAsync(old, echo.Port);
        await old.SendAsync(new { command = "send", data = "hello" });
        var echoed = new MemoryStream();
        await old.ExpectAnswerAsync("""{"success":true,"code":0,"message":"send done"}""", echoed);
        await old.ReadDataAsync(echoed, 5);
        await using var taking = await host.ConnectAsync();
        await taking.SendAsync(new { command = "resume", token, received = 2 });
        var done = await taking.ReceiveJsonAsync();
        Assert.Equal("resume done", (string)done["message"]!);
        Assert.Equal(5L, (long)done["taken"]!);
        Assert.Equal(3L, (long)done["replayed"]!);
        Assert.NotEqual(token, (string)done["resume"]!);
        var replayed = new MemoryStream();
        await taking.ReadDataAsync(replayed, 3);
        Assert.Equal("llo", Encoding.UTF8.GetString(replayed.ToArray()));
        await EchoAsync(taking, "again");
        // The old WebSocket was let go (aborted under it): it hears nothing more of the session.
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            var next = await old.ReceiveAsync();
            if (next.Type == WebSocketMessageType.Close) throw new WebSocketException("closed");
        });
    }

    /// <summary>Attack: guessed tokens are refused in the same words as any other, and an address that keeps guessing is stopped.</summary>
    [Fact]
    public async Task Guessed_tokens_are_refused_and_guessing_is_held_to_the_attempts_a_minute()
    {
        await using var host = await Ws2sHost.StartAsync(Config(o => o.Resume.MaxAttemptsPerMinute = 5));
        // Resumes that succeed do not count: a client that resumes often is not guessing.
        using var echo = Peer.Echo();
        var often = await host.ConnectAsync();
        var token = await ConnectResumableAsync(often, echo.Port);
        for (var i = 0; i < 7; i++)
        {
            often.Socket.Abort();
            often = await host.ConnectAsync();
            await often.SendAsync(new { command = "resume", token, received = 0 });
            token = (string)(await often.ReceiveJsonAsync())["resume"]!;
            await often.SendAsync(new { command = "ping" });
            await often.ExpectAsync("""{"success":true,"code":0,"message":"ping done"}""");
        }
        await using var guesser = await host.ConnectAsync();
        for (var i = 0; i < 5; i++)
        {
            await guesser.SendAsync(new { command = "resume", token = "t1." + Convert.ToBase64String(RandomNumberGenerator.GetBytes(16)), received = 0 });
            await guesser.ExpectAsync("""{"success":false,"code":9,"message":"resume failed: no session holds this token"}""");
        }
        await guesser.SendAsync(new { command = "resume", token = "t1.AAAAAAAAAAAAAAAAAAAAAA", received = 0 });
        await guesser.ExpectAsync("""{"success":false,"code":9,"message":"resume failed: too many resume attempts; wait a minute"}""");
        // The session that guessed is still usable.
        await guesser.SendAsync(new { command = "ping" });
        await guesser.ExpectAsync("""{"success":true,"code":0,"message":"ping done"}""");
    }

    /// <summary>
    /// Attack: a token is good once (once the WebSocket that resumed with it has said something); the one a resume gives back
    /// is the next. Until then it is good again, for a client whose <c>resume done</c> was lost with its WebSocket.
    /// </summary>
    [Fact]
    public async Task A_used_token_is_refused_and_the_new_one_resumes()
    {
        await using var host = await Ws2sHost.StartAsync(Config());
        using var echo = Peer.Echo();
        var first = await host.ConnectAsync();
        var token = await ConnectResumableAsync(first, echo.Port);
        first.Socket.Abort();
        // A resume whose answer never reached the client (it went before saying anything): the same token works again.
        var unanswered = await host.ConnectAsync();
        await unanswered.SendAsync(new { command = "resume", token, received = 0 });
        Assert.Equal("resume done", (string)(await unanswered.ReceiveJsonAsync())["message"]!);
        unanswered.Socket.Abort();
        await using var second = await host.ConnectAsync();
        await second.SendAsync(new { command = "resume", token, received = 0 });
        var done = await second.ReceiveJsonAsync();
        Assert.Equal("resume done", (string)done["message"]!);
        await second.SendAsync(new { command = "ping" });
        await second.ExpectAsync("""{"success":true,"code":0,"message":"ping done"}""");
        second.Socket.Abort();
        await using var replay = await host.ConnectAsync();
        await replay.SendAsync(new { command = "resume", token, received = 0 });
        await replay.ExpectAsync("""{"success":false,"code":9,"message":"resume failed: no session holds this token"}""");
        await replay.SendAsync(new { command = "resume", token = (string)done["resume"]!, received = 0 });
        Assert.Equal("resume done", (string)(await replay.ReceiveJsonAsync())["message"]!);
        await EchoAsync(replay, "still there");
    }

    /// <summary>Attack: a token stolen by a page of another origin, or presented with another access token, resumes nothing; its owner still can.</summary>
    [Fact]
    public async Task A_resume_from_another_origin_or_access_token_is_refused_and_changes_nothing()
    {
        await using var host = await Ws2sHost.StartAsync(Config(o =>
        {
            o.Tokens = ["alpha-token-0123456789", "bravo-token-0123456789"];
            o.Origins = ["http://localhost:8080", "http://evil.localhost:8080"];
        }));
        using var echo = Peer.Echo();
        var owner = await WsClient.ConnectAsync(new Uri(host.Url, "/?token=alpha-token-0123456789"));
        var token = await ConnectResumableAsync(owner, echo.Port);
        owner.Socket.Abort();
        await using (var otherOrigin = await WsClient.ConnectAsync(new Uri(host.Url, "/?token=alpha-token-0123456789"), "http://evil.localhost:8080"))
        {
            await otherOrigin.SendAsync(new { command = "resume", token, received = 0 });
            await otherOrigin.ExpectAsync("""{"success":false,"code":9,"message":"resume failed: no session holds this token"}""");
        }
        await using (var otherToken = await WsClient.ConnectAsync(new Uri(host.Url, "/?token=bravo-token-0123456789")))
        {
            await otherToken.SendAsync(new { command = "resume", token, received = 0 });
            await otherToken.ExpectAsync("""{"success":false,"code":9,"message":"resume failed: no session holds this token"}""");
        }
        await using var back = await WsClient.ConnectAsync(new Uri(host.Url, "/?token=alpha-token-0123456789"));
        await back.SendAsync(new { command = "resume", token, received = 0 });
        Assert.Equal("resume done", (string)(await back.ReceiveJsonAsync())["message"]!);
        await EchoAsync(back, "mine");
    }

    /// <summary>
    /// Attack: two resumes with one token at once. The token is claimed by one at a time: the first to claim it takes the
    /// session; the other hears code 9, or (its claim coming after the first was answered, before that client said anything:
    /// the token is good again then, in case that answer was lost) takes the session over from it, which is let go. Either
    /// way one WebSocket holds the session, and the other cannot get it back.
    /// </summary>
    [Fact]
    public async Task Two_resumes_with_one_token_at_once_leave_one_WebSocket_with_the_session()
    {
        await using var host = await Ws2sHost.StartAsync(Config());
        using var echo = Peer.Echo();
        var owner = await host.ConnectAsync();
        var token = await ConnectResumableAsync(owner, echo.Port);
        owner.Socket.Abort();
        await using var a = await host.ConnectAsync();
        await using var b = await host.ConnectAsync();
        await Task.WhenAll(a.SendAsync(new { command = "resume", token, received = 0 }), b.SendAsync(new { command = "resume", token, received = 0 }));
        var answers = await Task.WhenAll(a.ReceiveJsonAsync(), b.ReceiveJsonAsync());
        Assert.Contains(answers, x => (string)x["message"]! == "resume done");
        Assert.All(answers, x => Assert.True((string)x["message"]! == "resume done" || (int)x["code"]! == 9, x.ToJsonString()));
        // The one that holds it echoes; the other has no session (let go, or refused) and its new token, if any, is good no more.
        var holders = 0;
        foreach (var (client, answer) in new[] { (a, answers[0]), (b, answers[1]) })
        {
            try
            {
                await client.SendAsync(new { command = "send", data = "x" });
                var next = await client.ReceiveJsonAsync();
                if ((string)next["message"]! == "send done") holders++;
            }
            catch (Exception e) when (e is WebSocketException or InvalidOperationException)
            {
                if ((string)answer["message"]! != "resume done") continue;
                await using var again = await host.ConnectAsync();
                await again.SendAsync(new { command = "resume", token = (string)answer["resume"]!, received = 0 });
                Assert.Equal(9, (int)(await again.ReceiveJsonAsync())["code"]!);
            }
        }
        Assert.Equal(1, holders);
    }

    /// <summary>A token is a secret: no log line at any level holds it, nor the token that admitted the session.</summary>
    [Fact]
    public async Task No_log_line_holds_a_resume_token()
    {
        var lines = new LoggedLines();
        string token, next;
        await using (var host = await Ws2sHost.StartAsync(Config(), services => services.AddSingleton<ILoggerProvider>(lines),
            "--Logging:LogLevel:Default", "Trace"))
        {
            using var echo = Peer.Echo();
            var first = await host.ConnectAsync();
            token = await ConnectResumableAsync(first, echo.Port);
            first.Socket.Abort();
            await using var second = await host.ConnectAsync();
            await second.SendAsync(new { command = "resume", token, received = 0 });
            next = (string)(await second.ReceiveJsonAsync())["resume"]!;
            await second.SendAsync(new { command = "resume", token = "t1.guessguessguessguessgu", received = 0 });
            await second.ReceiveJsonAsync();
        }
        Assert.Contains(lines.All, l => l.Contains("resumed", StringComparison.Ordinal));
        foreach (var secret in new[] { token, next, token[3..], next[3..], "guessguessguessguessgu" })
            Assert.DoesNotContain(lines.All, l => l.Contains(secret, StringComparison.Ordinal));
    }

    /// <summary>
    /// Found in review: a <c>resume</c> queued behind a pending connect let the reader take the next message meanwhile, so the
    /// hand-over waited for a frame the client (waiting for its answer) never sent. The reader now stops at a queued resume:
    /// it is answered, and what the client sends after it goes to the session it resumed.
    /// </summary>
    [Fact]
    public async Task A_resume_queued_behind_a_pending_connect_is_answered_and_what_follows_it_goes_to_the_resumed_session()
    {
        await using var host = await Ws2sHost.StartAsync(Config(o => o.Limits.ConnectTimeoutSeconds = 1));
        using var echo = Peer.Echo();
        using var unanswered = new UnansweredPort();
        var owner = await host.ConnectAsync();
        var token = await ConnectResumableAsync(owner, echo.Port);
        owner.Socket.Abort();
        await using var taker = await host.ConnectAsync();
        await taker.SendAsync(new { command = "connect", host = "127.0.0.1", port = unanswered.Port });
        await taker.SendAsync(new { command = "resume", token, received = 0 });
        await taker.SendAsync(new { command = "send", data = "after" });
        await taker.ExpectAsync("""{"success":false,"code":2,"message":"connect timed out after 1 s"}""");
        Assert.Equal("resume done", (string)(await taker.ReceiveJsonAsync())["message"]!);
        var echoed = new MemoryStream();
        await taker.ExpectAnswerAsync("""{"success":true,"code":0,"message":"send done"}""", echoed);
        await taker.ReadDataAsync(echoed, 5);
        Assert.Equal("after", Encoding.UTF8.GetString(echoed.ToArray())); // the resumed session's echo peer
    }

    /// <summary>Found in review: the session a client left by resuming another was logged as ended with 1011 "unexpected server error".</summary>
    [Fact]
    public async Task A_successful_resume_is_not_logged_as_a_server_error()
    {
        var lines = new LoggedLines();
        await using var host = await Ws2sHost.StartAsync(Config(), services => services.AddSingleton<ILoggerProvider>(lines));
        using var echo = Peer.Echo();
        var first = await host.ConnectAsync();
        var token = await ConnectResumableAsync(first, echo.Port);
        first.Socket.Abort();
        await using var second = await host.ConnectAsync();
        await second.SendAsync(new { command = "resume", token, received = 0 });
        Assert.Equal("resume done", (string)(await second.ReceiveJsonAsync())["message"]!);
        var ended = await lines.WaitForAsync(l => l.Contains("ended after", StringComparison.Ordinal) && l.Contains("close 1000", StringComparison.Ordinal));
        Assert.Contains("its WebSocket went on in the session it resumed", ended);
        Assert.DoesNotContain(lines.All, l => l.Contains("unexpected server error", StringComparison.Ordinal));
    }

    /// <summary>
    /// Found in review: a session whose old client went silent (a phone on another network: its TCP connection open, reading
    /// nothing) waits in a send to it once the buffers are full, and saw a resume only when TCP gave up, minutes later. The
    /// resume now lets the old WebSocket go at once. (A window larger than the buffers, so that the session is in that send.)
    /// </summary>
    [Fact]
    public async Task A_resume_is_answered_while_the_old_WebSocket_is_stuck_in_a_send()
    {
        await using var host = await Ws2sHost.StartAsync(Config(o => o.Resume.MaxBufferedBytes = 64 << 20));
        using var source = Peer.Source(1L << 30);
        var silent = await host.ConnectAsync();
        await silent.SendAsync(new { command = "connect", host = "127.0.0.1", port = source.Port, resumable = true, binary = true });
        var token = (string)(await silent.ReceiveJsonAsync())["resume"]!;
        await ToClientStallsAsync(host); // the session now waits in its send to the silent client
        await using var taker = await host.ConnectAsync();
        await taker.SendAsync(new { command = "resume", token, received = 0 });
        var first = await taker.ReceiveAsync();
        Assert.Equal(WebSocketMessageType.Text, first.Type);
        Assert.Equal("resume done", (string)JsonNode.Parse(first.Text)!["message"]!);
        silent.Socket.Abort();
    }

    /// <summary>Waits until the server's bytes to clients stop growing (a send that waits for a client that reads nothing).</summary>
    private static async Task ToClientStallsAsync(Ws2sHost host)
    {
        using var http = new HttpClient();
        var metrics = new UriBuilder(host.Url) { Scheme = "http", Path = "/metrics" }.Uri;
        long last = -1;
        using var patience = new CancellationTokenSource(WsClient.Patience);
        while (true)
        {
            var text = await http.GetStringAsync(metrics, patience.Token);
            var match = System.Text.RegularExpressions.Regex.Match(text, @"ws2s_bytes_total\{[^}]*direction=""to_client""[^}]*\} (\d+)");
            var now = match.Success ? long.Parse(match.Groups[1].Value) : 0;
            if (now > 1 << 20 && now == last) return;
            last = now;
            await Task.Delay(200, patience.Token); // between two looks at the counter (the wait is for the counter to stand still)
        }
    }

    /// <summary>A server stopping with a suspended session stops promptly and closes the session's connection.</summary>
    [Fact]
    public async Task Stopping_with_a_suspended_session_is_prompt_and_closes_its_connection()
    {
        var ended = new TaskCompletionSource<(long, string)>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sink = Peer.Sink(ended);
        var host = await Ws2sHost.StartAsync(Config());
        var client = await host.ConnectAsync();
        await ConnectResumableAsync(client, sink.Port);
        client.Socket.Abort();
        await host.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        await ended.Task.WaitAsync(TimeSpan.FromSeconds(5));
    }

    /// <summary>
    /// Found in review: with their clients there, the bytes resumable connections kept were bound by nothing server-wide: a
    /// client that reads everything and never acknowledges pinned resume.maxBufferedBytes per session. All kept bytes together
    /// are now bound (resume.maxBufferedBytesTotal): at it, the sessions that keep any read their peers no more.
    /// </summary>
    [Fact]
    public async Task The_bytes_all_resumable_connections_keep_stay_within_their_server_wide_bound()
    {
        const int sessions = 16;
        const long total = 8 << 20;
        await using var host = await Ws2sHost.StartAsync(Config(o =>
        {
            o.Resume.MaxBufferedBytes = 4 << 20;
            o.Resume.MaxBufferedBytesTotal = total;
        }));
        using var source = Peer.Source(16L << 20);
        var kept = host.Services.GetRequiredService<Ws2s.AspNetCore.Sessions.RunnerServices>().Kept;
        var clients = new List<WsClient>();
        using var reading = new CancellationTokenSource();
        var readers = new List<Task>();
        for (var i = 0; i < sessions; i++)
        {
            var client = await host.ConnectAsync();
            await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = source.Port, resumable = true, binary = true });
            Assert.Equal("connect done", (string)(await client.ReceiveJsonAsync())["message"]!);
            clients.Add(client);
            // Reads everything, acknowledges nothing.
            readers.Add(Task.Run(async () =>
            {
                var buffer = new byte[64 * 1024];
                try
                {
                    while (true) await client.Socket.ReceiveAsync(buffer, reading.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or WebSocketException) { }
            }));
        }
        // Until the bound is reached, then a while longer: what is kept never goes past it but for the reads under way.
        using var patience = new CancellationTokenSource(WsClient.Patience);
        while (kept.Used < total) await Task.Delay(50, patience.Token); // looking at the counter
        var most = kept.Used;
        for (var look = 0; look < 20; look++)
        {
            await Task.Delay(50); // looking at the counter again
            most = Math.Max(most, kept.Used);
        }
        reading.Cancel();
        await Task.WhenAll(readers);
        foreach (var client in clients) client.Socket.Abort();
        Assert.True(most <= total + sessions * 8 * 64 * 1024, $"{most >> 20} MiB kept by {sessions} sessions whose clients never acknowledge; bound {total >> 20} MiB");
    }

    /// <summary>
    /// Found in review: a suspended session holds its client's session slot (as it should), so at its quota the client could
    /// not open the WebSocket to resume it. A WebSocket that comes to resume (<c>?instance=</c> of this server) is admitted past
    /// the limits, to do that only (a few per client); one without it is still refused, and one that asks anything else is closed.
    /// </summary>
    [Fact]
    public async Task A_client_at_its_session_quota_can_still_resume_its_suspended_session_and_do_nothing_else()
    {
        await using var host = await Ws2sHost.StartAsync(Config(o => o.Limits.MaxSessionsPerClient = 1));
        using var echo = Peer.Echo();
        var first = await host.ConnectAsync();
        var token = await ConnectResumableAsync(first, echo.Port);
        first.Socket.Abort();
        await Assert.ThrowsAnyAsync<WebSocketException>(() => host.ConnectAsync()); // 503: its one slot is the suspended session's
        await using (var other = await WsClient.ConnectAsync(new Uri(host.Url, "/?instance=t1")))
        {
            await other.SendAsync(new { command = "ping" });
            await other.ExpectCloseAsync(1008, "admitted past the session limits to resume a session: resume is all this WebSocket may ask");
        }
        await using var back = await WsClient.ConnectAsync(new Uri(host.Url, "/?instance=t1"));
        await back.SendAsync(new { command = "resume", token, received = 0 });
        Assert.Equal("resume done", (string)(await back.ReceiveJsonAsync())["message"]!);
        await EchoAsync(back, "at the quota");
    }

    /// <summary>Sends <paramref name="text"/> on a session connected to an echo peer and reads it back.</summary>
    private static async Task EchoAsync(WsClient client, string text)
    {
        await client.SendAsync(new { command = "send", data = text });
        var echoed = new MemoryStream();
        await client.ExpectAnswerAsync("""{"success":true,"code":0,"message":"send done"}""", echoed);
        await client.ReadDataAsync(echoed, Encoding.UTF8.GetByteCount(text));
        Assert.Equal(text, Encoding.UTF8.GetString(echoed.ToArray()));
    }

    /// <summary>Connects to 127.0.0.1:<paramref name="port"/> asking to be resumable; the token.</summary>
    private static async Task<string> ConnectResumableAsync(WsClient client, int port)
    {
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port, resumable = true });
        var answer = await client.ReceiveJsonAsync();
        Assert.Equal("connect done", (string)answer["message"]!);
        var token = (string)answer["resume"]!;
        Assert.Matches("^t1\\.[A-Za-z0-9_-]{22}$", token);
        return token;
    }
}

/// <summary>
/// A client of the resume contract (spec/protocol.md, Resumable sessions), written from the spec: in binary mode it sends
/// <paramref name="total"/> bytes of <see cref="Peer.Pattern"/> to an echo peer and reads them back, acknowledging every
/// 256 KiB received, and sending at most 1 MiB beyond what the server said it took; whenever its WebSocket breaks it opens
/// another and resumes, sending again from what the server took.
/// </summary>
public sealed class ResumingClient(Uri url, int echoPort, long total)
{
    private const int Chunk = 64 * 1024;

    /// <summary>Called with the bytes received so far, after each message.</summary>
    public Action<long>? Progress { get; set; }

    public int Resumes { get; private set; }

    /// <summary>The most data sent and not yet taken, as the contract asks of a client.</summary>
    private const long Window = 1 << 20;

    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _received;
    private string _token = "";

    /// <summary>What the server said it took (the last ack's answer, or the resume's).</summary>
    private long _taken;

    /// <summary>Completed when <see cref="_taken"/> grows.</summary>
    private TaskCompletionSource _tookMore = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public async Task<(long Received, string Sha256)> RunAsync()
    {
        var socket = await OpenAsync();
        await SendTextAsync(socket, new { command = "connect", host = "127.0.0.1", port = echoPort, binary = true, resumable = true }, new SemaphoreSlim(1));
        var answer = await ReceiveTextAsync(socket);
        _token = (string)answer["resume"]!;
        long from = 0;
        while (true)
        {
            using var broken = new CancellationTokenSource();
            var sending = new SemaphoreSlim(1);
            var sender = SendFromAsync(socket, from, sending, broken.Token);
            try
            {
                await ReceiveUntilDoneAsync(socket, sending);
                broken.Cancel();
                return (_received, Convert.ToHexString(_hash.GetHashAndReset()));
            }
            catch (Exception e) when (e is WebSocketException or IOException or OperationCanceledException)
            {
                broken.Cancel();
            }
            try { await sender; } catch (Exception e) when (e is WebSocketException or IOException or OperationCanceledException or ObjectDisposedException) { }
            socket.Abort();
            (socket, from) = await ResumeAsync();
            _taken = from;
            Resumes++;
        }
    }

    private async Task<(ClientWebSocket, long Taken)> ResumeAsync()
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                var socket = await OpenAsync();
                await SendTextAsync(socket, new { command = "resume", token = _token, received = _received }, new SemaphoreSlim(1));
                var answer = await ReceiveTextAsync(socket);
                if ((string?)answer["message"] != "resume done") throw new InvalidOperationException($"resume refused: {answer.ToJsonString()}");
                _token = (string)answer["resume"]!;
                return (socket, (long)answer["taken"]!);
            }
            catch (Exception e) when ((e is WebSocketException or IOException) && attempt < 50)
            {
                await Task.Delay(100); // a reconnect's backoff, as a client's (not a test's wait)
            }
        }
    }

    private async Task<ClientWebSocket> OpenAsync()
    {
        var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Origin", "http://localhost:8080");
        using var timeout = new CancellationTokenSource(WsClient.Patience);
        await socket.ConnectAsync(url, timeout.Token);
        return socket;
    }

    private async Task SendFromAsync(ClientWebSocket socket, long from, SemaphoreSlim sending, CancellationToken broken)
    {
        var chunk = new byte[Chunk];
        for (var at = from; at < total; at += Chunk)
        {
            while (at - Volatile.Read(ref _taken) >= Window)
            {
                // At the window: ask what was taken, and wait for the answer.
                var more = _tookMore.Task;
                await SendTextAsync(socket, new { command = "ack", received = Volatile.Read(ref _received) }, sending);
                await more.WaitAsync(broken);
            }
            var n = (int)Math.Min(Chunk, total - at);
            Peer.Pattern(at, chunk.AsSpan(0, n));
            await sending.WaitAsync(broken);
            try
            {
                await socket.SendAsync(chunk.AsMemory(0, n), WebSocketMessageType.Binary, true, broken);
            }
            finally
            {
                sending.Release();
            }
        }
    }

    private async Task ReceiveUntilDoneAsync(ClientWebSocket socket, SemaphoreSlim sending)
    {
        var buffer = new byte[256 * 1024];
        var acknowledged = _received;
        while (_received < total)
        {
            using var patience = new CancellationTokenSource(WsClient.Patience);
            var result = await socket.ReceiveAsync(buffer, patience.Token);
            if (result.MessageType == WebSocketMessageType.Close) throw new WebSocketException("closed");
            if (result.MessageType == WebSocketMessageType.Binary)
            {
                _hash.AppendData(buffer, 0, result.Count);
                _received += result.Count;
            }
            else
            {
                var json = JsonNode.Parse(Encoding.UTF8.GetString(buffer, 0, result.Count))!;
                if ((string?)json["message"] != "ack done") throw new InvalidOperationException($"unexpected: {json.ToJsonString()}");
                Volatile.Write(ref _taken, Math.Max(_taken, (long)json["taken"]!));
                Interlocked.Exchange(ref _tookMore, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
            }
            if (_received - acknowledged >= 256 << 10)
            {
                acknowledged = _received;
                await SendTextAsync(socket, new { command = "ack", received = _received }, sending);
            }
            Progress?.Invoke(_received);
        }
    }

    private static async Task SendTextAsync(ClientWebSocket socket, object request, SemaphoreSlim sending)
    {
        await sending.WaitAsync();
        try
        {
            await socket.SendAsync(JsonSerializer.SerializeToUtf8Bytes(request), WebSocketMessageType.Text, true, CancellationToken.None);
        }
        finally
        {
            sending.Release();
        }
    }

    private static async Task<JsonObject> ReceiveTextAsync(ClientWebSocket socket)
    {
        var buffer = new byte[64 * 1024];
        using var patience = new CancellationTokenSource(WsClient.Patience);
        var result = await socket.ReceiveAsync(buffer, patience.Token);
        if (result.MessageType != WebSocketMessageType.Text) throw new WebSocketException($"expected an answer, got {result.MessageType}");
        return JsonNode.Parse(Encoding.UTF8.GetString(buffer, 0, result.Count))!.AsObject();
    }
}
