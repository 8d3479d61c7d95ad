using Microsoft.Playwright;

namespace Ws2s.Host.Tests;

/// <summary>The web console in Chromium, against this server, a real Redis and a real echo peer.</summary>
[Collection("Chromium")]
public sealed class ConsoleBrowserTests : ChromiumTests
{
    [SkippableFact]
    public async Task The_Redis_tab_runs_commands_and_shows_each_reply_by_its_type()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var host = await StartHostAsync();
        var page = await Browser.NewPageAsync();
        await page.GotoAsync(Page(host).ToString());

        await page.ClickAsync("#tab-redis");
        await page.FillAsync("#redis-port", redis.Port.ToString());
        await page.ClickAsync("#redis-connect");
        await Assertions.Expect(page.Locator("#redis-status")).ToHaveTextAsync($"Connected to Redis at 127.0.0.1:{redis.Port}.");

        async Task<ILocator> Run(string command)
        {
            var entries = page.Locator("#redis-output li.reply, #redis-output > li");
            var before = await entries.CountAsync();
            await page.FillAsync("#redis-command", command);
            await page.PressAsync("#redis-command", "Enter");
            var entry = page.Locator("#redis-output > li").Nth(before);
            await Assertions.Expect(entry.Locator(".reply > :nth-child(2)")).ToBeVisibleAsync();
            return entry.Locator(".reply > :nth-child(2)");
        }

        await Assertions.Expect(await Run("SET name \"ws2s for .NET\"")).ToHaveTextAsync("OK");
        var get = await Run("GET name");
        await Assertions.Expect(get).ToHaveTextAsync("ws2s for .NET");
        await Assertions.Expect(get).ToHaveClassAsync("str");
        await Assertions.Expect(await Run("INCR visits")).ToHaveTextAsync("(integer) 1");
        await Assertions.Expect(await Run("LPUSH letters a b c")).ToHaveTextAsync("(integer) 3");
        var range = await Run("LRANGE letters 0 -1");
        await Assertions.Expect(range.Locator("> li")).ToHaveTextAsync(["c", "b", "a"]);
        await Run("HSET user name ada lang fsharp");
        var hash = await Run("HGETALL user");
        await Assertions.Expect(hash.Locator("> li")).ToHaveTextAsync(["name", "ada", "lang", "fsharp"]);
        await Assertions.Expect(await Run("GET nothing-here")).ToHaveTextAsync("(nil)");
        var error = await Run("INCR name");
        await Assertions.Expect(error).ToHaveClassAsync("error");
        await Assertions.Expect(error).ToContainTextAsync("(error) ERR");
        await Assertions.Expect(error).ToHaveCSSAsync("color", "rgb(198, 40, 40)");

        // History: ↑ brings back the last command.
        await page.PressAsync("#redis-command", "ArrowUp");
        await Assertions.Expect(page.Locator("#redis-command")).ToHaveValueAsync("INCR name");
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "redis-tab.png"), FullPage = true });
    }

    [SkippableFact]
    public async Task The_Socket_tab_sends_and_shows_what_comes_back_as_text_or_hex()
    {
        using var echo = Peer.Echo();
        await using var host = await StartHostAsync();
        var page = await Browser.NewPageAsync();
        await page.GotoAsync(Page(host).ToString());

        await page.FillAsync("#socket-port", echo.Port.ToString());
        await page.ClickAsync("#socket-connect");
        await Assertions.Expect(page.Locator("#socket-status")).ToHaveTextAsync($"Connected to 127.0.0.1:{echo.Port}.");
        await page.FillAsync("#socket-input", "hello, echo");
        await page.PressAsync("#socket-input", "Enter");
        await Assertions.Expect(page.Locator("#socket-log li.sent")).ToContainTextAsync("hello, echo");
        await Assertions.Expect(page.Locator("#socket-log li.received")).ToContainTextAsync("hello, echo");

        await page.SelectOptionAsync("#socket-mode", "hex");
        await page.FillAsync("#socket-input", "00 ff 41");
        await page.PressAsync("#socket-input", "Enter");
        await Assertions.Expect(page.Locator("#socket-log li.received").Last).ToContainTextAsync("00 ff 41");
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "socket-tab.png"), FullPage = true });

        await page.ClickAsync("#socket-close");
        await Assertions.Expect(page.Locator("#socket-status")).ToHaveTextAsync("Closed.");
    }

    /// <summary>
    /// Issue 25: a terminal-like session (a real shell behind socat, on a pty) through a proxy that drops: after the drop the
    /// same shell is there, with what was set before it (a variable), because the connection to it never ended.
    /// </summary>
    [SkippableFact]
    public async Task A_shell_in_the_Socket_tab_keeps_its_state_across_a_dropped_connection()
    {
        Requirements.Need("/usr/bin/socat", "socat");
        var port = Loopback.FreePort();
        await using var shell = WatchedProcess.Start("/usr/bin/socat",
            [$"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork", "EXEC:/bin/sh,pty,stderr,setsid,sane"]);
        await Loopback.WaitUntilListeningAsync(port);
        await using var host = await StartHostAsync();
        using var proxy = new ResettingProxy(host.Url.Port);
        var page = await Browser.NewPageAsync();
        await page.GotoAsync($"http://127.0.0.1:{proxy.Port}/");
        await page.FillAsync("#socket-port", port.ToString());
        await page.ClickAsync("#socket-connect");
        await Assertions.Expect(page.Locator("#socket-status")).ToHaveTextAsync($"Connected to 127.0.0.1:{port}.");
        // What the shell says arrives in as many pieces as the pty gives (a prompt apart, or each echoed character): the log's
        // received text, joined, is the shell's output.
        async Task ShellSaysAsync(string words) => await page.WaitForFunctionAsync(
            "words => [...document.querySelectorAll('#socket-log li.received')].map(li => li.lastChild.textContent).join('').includes(words)",
            words, new() { Timeout = 15000 });
        await page.FillAsync("#socket-input", "X=41; echo set-$X");
        await page.PressAsync("#socket-input", "Enter");
        await ShellSaysAsync("set-41");
        proxy.Reset();
        await Assertions.Expect(page.Locator("#socket-log li.note").Last).ToContainTextAsync("reconnected, nothing lost");
        await page.FillAsync("#socket-input", "echo still-$((X+1))");
        await page.PressAsync("#socket-input", "Enter");
        // Only the shell that ran the first line knows X: a new connection (a new shell) would say still-1.
        await ShellSaysAsync("still-42");
    }

    [SkippableFact]
    public async Task The_Socket_and_Redis_tabs_resume_when_the_connection_to_ws2s_is_reset_and_say_nothing_was_lost()
    {
        await using var redis = await RedisServer.StartAsync();
        using var echo = Peer.Echo();
        await using var host = await StartHostAsync();
        // The page and its WebSockets reach ws2s through a proxy the test resets (as a lost Wi-Fi or a restarted NAT would).
        using var proxy = new ResettingProxy(host.Url.Port);
        var page = await Browser.NewPageAsync();
        await page.GotoAsync($"http://127.0.0.1:{proxy.Port}/");

        await page.FillAsync("#socket-port", echo.Port.ToString());
        await page.ClickAsync("#socket-connect");
        await Assertions.Expect(page.Locator("#socket-status")).ToHaveTextAsync($"Connected to 127.0.0.1:{echo.Port}.");
        await page.FillAsync("#socket-input", "before");
        await page.PressAsync("#socket-input", "Enter");
        await Assertions.Expect(page.Locator("#socket-log li.received")).ToContainTextAsync("before");
        proxy.Reset();
        await Assertions.Expect(page.Locator("#socket-log li.note").Last).ToContainTextAsync("reconnected, nothing lost");
        await Assertions.Expect(page.Locator("#socket-status")).ToHaveTextAsync($"Connected to 127.0.0.1:{echo.Port}.");
        await page.FillAsync("#socket-input", "after");
        await page.PressAsync("#socket-input", "Enter");
        await Assertions.Expect(page.Locator("#socket-log li.received").Last).ToContainTextAsync("after");
        await Assertions.Expect(page.Locator("#socket-log li.received")).ToHaveCountAsync(2); // nothing twice

        await page.ClickAsync("#tab-redis");
        await page.FillAsync("#redis-port", redis.Port.ToString());
        await page.ClickAsync("#redis-connect");
        await Assertions.Expect(page.Locator("#redis-status")).ToHaveTextAsync($"Connected to Redis at 127.0.0.1:{redis.Port}.");
        await page.FillAsync("#redis-command", "SET resumed yes");
        await page.PressAsync("#redis-command", "Enter");
        await Assertions.Expect(page.Locator("#redis-output .reply").Last).ToContainTextAsync("OK");
        proxy.Reset();
        await Assertions.Expect(page.Locator("#redis-output li.note").Last).ToContainTextAsync("reconnected, nothing lost");
        await page.FillAsync("#redis-command", "GET resumed");
        await page.PressAsync("#redis-command", "Enter");
        await Assertions.Expect(page.Locator("#redis-output .reply").Last).ToContainTextAsync("yes");
        await Assertions.Expect(page.Locator("#redis-status")).ToHaveTextAsync($"Connected to Redis at 127.0.0.1:{redis.Port}.");
    }

    [SkippableFact]
    public async Task The_Socket_tab_carries_TCP_and_UDP_as_streams_of_one_Wisp_connection()
    {
        using var echo = Peer.Echo();
        using var udpEcho = new UdpEcho();
        await using var host = await Ws2sHost.StartAsync(TestConfig.Loopback.With(o => o.Udp.Enabled = true));
        var page = await Browser.NewPageAsync();
        await page.GotoAsync(Page(host).ToString());
        await page.SelectOptionAsync("#socket-via", "wisp");
        await Assertions.Expect(page.Locator("#socket-tls")).ToBeDisabledAsync(); // ws2s's TLS is not a Wisp stream's

        await page.FillAsync("#socket-port", echo.Port.ToString());
        await page.ClickAsync("#socket-connect");
        await Assertions.Expect(page.Locator("#socket-status")).ToHaveTextAsync($"Connected to 127.0.0.1:{echo.Port} via Wisp.");
        await page.FillAsync("#socket-input", "hello, wisp");
        await page.PressAsync("#socket-input", "Enter");
        await Assertions.Expect(page.Locator("#socket-log li.received")).ToContainTextAsync("hello, wisp");
        await page.ClickAsync("#socket-close");
        await Assertions.Expect(page.Locator("#socket-status")).ToHaveTextAsync("Closed.");

        await page.CheckAsync("#socket-udp");
        await page.FillAsync("#socket-port", udpEcho.Port.ToString());
        await page.ClickAsync("#socket-connect");
        await Assertions.Expect(page.Locator("#socket-status")).ToHaveTextAsync($"Connected to 127.0.0.1:{udpEcho.Port} (UDP) via Wisp.");
        await page.FillAsync("#socket-input", "one datagram");
        await page.PressAsync("#socket-input", "Enter");
        await Assertions.Expect(page.Locator("#socket-log li.received").Last).ToContainTextAsync("one datagram");
        Assert.Equal(1, udpEcho.Received); // the line and its CRLF: one datagram
    }

    [SkippableFact]
    public async Task A_refused_port_shows_a_readable_error()
    {
        using var refused = new RefusedPort();
        await using var host = await StartHostAsync();
        var page = await Browser.NewPageAsync();
        await page.GotoAsync(Page(host).ToString());
        await page.FillAsync("#socket-port", refused.Port.ToString());
        await page.ClickAsync("#socket-connect");
        await Assertions.Expect(page.Locator("#socket-status")).ToHaveTextAsync("Could not connect: connection refused (code 2)");
        await Assertions.Expect(page.Locator("#socket-status")).ToHaveClassAsync("status error");
        await Assertions.Expect(page.Locator("#socket-connect")).ToBeEnabledAsync();
    }

    [SkippableFact]
    public async Task The_Redis_tab_connects_over_tls_and_says_why_an_untrusted_certificate_is_refused()
    {
        using var pki = new TestPki();
        await using var redis = await RedisServer.StartAsync(pki);
        foreach (var (trusted, status) in new[]
                 {
                     (false, "Connection not secure: tls failed: certificate not trusted for 127.0.0.1 (code 8)"),
                     (true, $"Connected to Redis at 127.0.0.1:{redis.Port} over TLS."),
                 })
        {
            await using var host = await Ws2sHost.StartAsync(
                TestConfig.Loopback.With(o => o.Tls.TrustedCertificates = trusted ? [pki.CaFile] : []));
            var page = await Browser.NewPageAsync();
            await page.GotoAsync(Page(host).ToString());
            await page.ClickAsync("#tab-redis");
            await page.FillAsync("#redis-port", redis.Port.ToString());
            await page.CheckAsync("#redis-tls");
            await page.ClickAsync("#redis-connect");
            await Assertions.Expect(page.Locator("#redis-status")).ToHaveTextAsync(status);
            if (!trusted) continue;
            await page.FillAsync("#redis-command", "PING");
            await page.PressAsync("#redis-command", "Enter");
            await Assertions.Expect(page.Locator("#redis-output > li").First.Locator(".reply > :nth-child(2)")).ToHaveTextAsync("PONG");
        }
    }

    [SkippableFact]
    public async Task The_Redis_tab_connects_once_however_fast_connect_is_clicked_and_always_says_why_it_ended()
    {
        var redis = await RedisServer.StartAsync();
        var port = redis.Port;
        var host = await StartHostAsync();
        try
        {
            var page = await Browser.NewPageAsync();
            await page.GotoAsync(Page(host).ToString());
            await page.ClickAsync("#tab-redis");
            await page.FillAsync("#redis-port", port.ToString());
            // Three clicks at once: one session (each extra one used to open a session and leak it).
            await page.EvaluateAsync("() => { for (let i = 0; i < 3; i++) document.getElementById('redis-connect').click(); }");
            await Assertions.Expect(page.Locator("#redis-status")).ToHaveTextAsync($"Connected to Redis at 127.0.0.1:{port}.");
            var clients = (await redis.CommandAsync("CLIENT LIST")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(2, clients.Length); // the console's one session, and this CLIENT LIST itself

            // Redis goes away: the status says so, and the command box is off until connected again.
            await redis.DisposeAsync();
            await Assertions.Expect(page.Locator("#redis-status")).ToHaveTextAsync("Redis closed the connection. Connect again when it is back.");
            await Assertions.Expect(page.Locator("#redis-command")).ToBeDisabledAsync();
            redis = await RedisServer.StartAsync(port: port);
            await page.ClickAsync("#redis-connect");
            await Assertions.Expect(page.Locator("#redis-status")).ToHaveTextAsync($"Connected to Redis at 127.0.0.1:{port}.");
            await page.FillAsync("#redis-command", "PING");
            await page.PressAsync("#redis-command", "Enter");
            await Assertions.Expect(page.Locator("#redis-output > li").Last.Locator(".reply > :nth-child(2)")).ToHaveTextAsync("PONG");

            // ws2s itself stops: that is not Redis closing, and the status says which.
            await host.DisposeAsync();
            await Assertions.Expect(page.Locator("#redis-status")).ToHaveTextAsync("The ws2s server is restarting (1001). Connect again when it is back.");
            await Assertions.Expect(page.Locator("#redis-command")).ToBeDisabledAsync();
        }
        finally
        {
            await redis.DisposeAsync();
            await host.DisposeAsync();
        }
    }

    [SkippableFact]
    public async Task The_Redis_tab_streams_pub_sub_messages_apart_from_replies_and_the_page_loads_without_errors()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var host = await StartHostAsync();
        var page = await Browser.NewPageAsync();
        var errors = new List<string>();
        page.Console += (_, message) => { if (message.Type == "error") errors.Add(message.Text); };
        await ConnectRedisTabAsync(page, host, redis.Port);
        await RunRedisAsync(page, "SUBSCRIBE news");
        await Assertions.Expect(page.Locator("#redis-output > li").Last.Locator(".reply > :nth-child(2) > li")).ToHaveTextAsync(["subscribe", "news", "(integer) 1"]);
        Assert.Equal("1", await redis.CommandAsync("PUBLISH news hello"));
        await Assertions.Expect(page.Locator("#redis-output > li.push")).ToContainTextAsync("message on news: hello");
        // A later command still gets its own reply (RESP2's PING while subscribed).
        await RunRedisAsync(page, "PING");
        await Assertions.Expect(page.Locator("#redis-output > li").Last.Locator(".reply > :nth-child(2) > li")).ToHaveTextAsync(["pong", ""]);
        Assert.Empty(errors); // no favicon 426, nothing else
    }

    [SkippableFact]
    public async Task The_Socket_tab_keeps_a_character_split_across_reads_whole_and_refuses_bad_hex_without_sending()
    {
        // The peer sends the first byte of "é", then the rest only once the client has said "next": two reads, two messages.
        using var peer = new Peer(async (socket, stop) =>
        {
            await socket.SendAsync(new byte[] { 0xC3 }, System.Net.Sockets.SocketFlags.None, stop);
            var buffer = new byte[64];
            var received = new List<byte>();
            while (!System.Text.Encoding.ASCII.GetString([.. received]).Contains("next"))
            {
                var n = await socket.ReceiveAsync(buffer, System.Net.Sockets.SocketFlags.None, stop);
                if (n == 0) return;
                received.AddRange(buffer.AsSpan(0, n));
            }
            await socket.SendAsync(new byte[] { 0xA9, (byte)'!', (byte)'\n' }, System.Net.Sockets.SocketFlags.None, stop);
            while (await socket.ReceiveAsync(buffer, System.Net.Sockets.SocketFlags.None, stop) > 0) { }
        });
        await using var host = await StartHostAsync();
        var page = await Browser.NewPageAsync();
        await page.GotoAsync(Page(host).ToString());
        await page.FillAsync("#socket-port", peer.Port.ToString());
        await page.ClickAsync("#socket-connect");
        await Assertions.Expect(page.Locator("#socket-status")).ToHaveTextAsync($"Connected to 127.0.0.1:{peer.Port}.");
        await Assertions.Expect(page.Locator("#socket-input")).ToBeFocusedAsync();
        await page.FillAsync("#socket-input", "next");
        await page.PressAsync("#socket-input", "Enter");
        await Assertions.Expect(page.Locator("#socket-log li.received")).ToContainTextAsync("é!");
        Assert.DoesNotContain("\uFFFD", await page.Locator("#socket-log").InnerTextAsync());

        // Hex mode: the \r\n option is off; letters that are not hex are refused and nothing is sent; a good send clears the error.
        await page.SelectOptionAsync("#socket-mode", "hex");
        await Assertions.Expect(page.Locator("#socket-newline")).ToBeDisabledAsync();
        var sent = await page.Locator("#socket-log li.sent").CountAsync();
        await page.FillAsync("#socket-input", "zz");
        await page.PressAsync("#socket-input", "Enter");
        await Assertions.Expect(page.Locator("#socket-status")).ToHaveTextAsync("Hex input takes only the digits 0-9 and a-f (e.g. 48 65 6c 6c 6f).");
        Assert.Equal(sent, await page.Locator("#socket-log li.sent").CountAsync());
        await page.FillAsync("#socket-input", "48 69");
        await page.PressAsync("#socket-input", "Enter");
        await Assertions.Expect(page.Locator("#socket-log li.sent").Last).ToContainTextAsync("48 69");
        await Assertions.Expect(page.Locator("#socket-status")).ToHaveTextAsync("Connected.");
    }

    [SkippableFact]
    public async Task The_Redis_tab_names_the_size_limit_for_a_value_too_big_and_cuts_a_5_MB_reply_with_show_all()
    {
        await using var redis = await RedisServer.StartAsync();
        Assert.Equal("OK", await redis.CommandAsync("EVAL \"return redis.call('SET', KEYS[1], string.rep('x', 5000000))\" 1 big"));
        await using var host = await Ws2sHost.StartAsync(
            TestConfig.Loopback.With(o => o.Limits.MaxMessageBytes = 65536));
        var page = await Browser.NewPageAsync();
        await ConnectRedisTabAsync(page, host, redis.Port);

        // Bytes that are not text, written with redis-cli's escapes and shown the way it shows them.
        await RunRedisAsync(page, "SET raw \"\\xff\\x00a\"");
        await RunRedisAsync(page, "GET raw");
        await Assertions.Expect(page.Locator("#redis-output > li").Last.Locator(".reply > :nth-child(2)")).ToHaveTextAsync("\\xff\\x00a");

        // 5 MB back: shown cut, with its size, whole on request.
        await RunRedisAsync(page, "GET big");
        var more = page.Locator("#redis-output button.more");
        await Assertions.Expect(more).ToHaveTextAsync("… 5000000 bytes: show all");
        await more.ClickAsync();
        Assert.Equal(5_000_000, await page.EvaluateAsync<int>("() => [...document.querySelectorAll('#redis-output .reply')].at(-1).querySelector('.str').textContent.length"));

        // A value over the server's message limit: the status names the limit and its key, not "connection closed by peer".
        await RunRedisAsync(page, "SET huge " + new string('y', 70_000));
        await Assertions.Expect(page.Locator("#redis-status")).ToHaveTextAsync(
            "Too big for the ws2s server: message exceeds 65536 bytes (its limit is limits.maxMessageBytes in the ws2s config). Connect again to go on.");
        await Assertions.Expect(page.Locator("#redis-command")).ToBeDisabledAsync();
        // Its reply line does not blame the peer either (it said "connection closed by peer").
        await Assertions.Expect(page.Locator("#redis-output > li").Last.Locator(".error")).ToHaveTextAsync(
            "Connection closed: ws2s closed the session: 1009 message exceeds 65536 bytes (code 5)");
    }

    /// <summary>
    /// Found in a user's walk of the Redis tab (issue 26): after a command with a long reply the view did not follow (2,211 px
    /// of it hidden below). A command the user sends brings its reply into view, its start when it is taller than the view,
    /// even from a log scrolled up.
    /// </summary>
    [SkippableFact]
    public async Task A_command_sent_brings_its_reply_into_view()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var host = await StartHostAsync();
        var page = await Browser.NewPageAsync();
        await ConnectRedisTabAsync(page, host, redis.Port);
        await RunRedisAsync(page, "RPUSH long " + string.Join(' ', Enumerable.Range(1, 300)));
        await Assertions.Expect(page.Locator("#redis-output > li").Last.Locator(".reply > :nth-child(2)")).ToHaveTextAsync("(integer) 300");
        for (var round = 0; round < 2; round++)
        {
            await page.EvaluateAsync("() => document.getElementById('redis-output').scrollTop = 0"); // a reader scrolled up
            var before = await page.Locator("#redis-output > li").CountAsync();
            await RunRedisAsync(page, "LRANGE long 0 -1");
            await Assertions.Expect(page.Locator("#redis-output > li")).ToHaveCountAsync(before + 1);
            await Assertions.Expect(page.Locator("#redis-output > li").Last.Locator(".reply > :nth-child(2)")).ToBeVisibleAsync();
            var shown = await page.EvaluateAsync<bool>("""
                () => {
                  const list = document.getElementById('redis-output').getBoundingClientRect();
                  const reply = [...document.querySelectorAll('#redis-output > li')].at(-1).getBoundingClientRect();
                  return reply.top >= list.top - 1 && reply.top < list.bottom;
                }
                """);
            Assert.True(shown, "the reply's start is not in view");
        }
    }

    [SkippableFact]
    public async Task A_refused_page_says_which_check_refused_it_and_the_token_field_keeps_the_token_out_of_the_address_bar()
    {
        await using var redis = await RedisServer.StartAsync();
        await using (var host = await Ws2sHost.StartAsync(
            TestConfig.Loopback.With(o => o.Tokens = ["right-token"])))
        {
            var page = await Browser.NewPageAsync();
            await page.GotoAsync(Page(host).ToString());
            await page.ClickAsync("#tab-redis");
            await page.FillAsync("#redis-port", redis.Port.ToString());
            await page.ClickAsync("#redis-connect");
            await Assertions.Expect(page.Locator("#redis-status")).ToHaveTextAsync(
                "The server refused this page: a token is required (?token=… or the subprotocol token.…) (HTTP 401). Enter the access token in the Token field.");
            await page.FillAsync("#token", "wrong-token");
            await page.ClickAsync("#redis-connect");
            await Assertions.Expect(page.Locator("#redis-status")).ToHaveTextAsync(
                "The server refused this page: the token is not valid (HTTP 401). Enter the access token in the Token field.");
            await page.FillAsync("#token", "right-token");
            await page.ClickAsync("#redis-connect");
            await Assertions.Expect(page.Locator("#redis-status")).ToHaveTextAsync($"Connected to Redis at 127.0.0.1:{redis.Port}.");

            // A token in the link is taken into the field and out of the address bar (and so out of history and bookmarks).
            var linked = await Browser.NewPageAsync();
            await linked.GotoAsync(new Uri(Page(host), "/?token=right-token").ToString());
            await Assertions.Expect(linked.Locator("#token")).ToHaveValueAsync("right-token");
            Assert.DoesNotContain("token", await linked.EvaluateAsync<string>("() => location.href"));
        }
        await using (var host = await Ws2sHost.StartAsync(
            TestConfig.Loopback.With(o => o.Origins = ["https://elsewhere.example"])))
        {
            var page = await Browser.NewPageAsync();
            await page.GotoAsync(Page(host).ToString());
            await page.FillAsync("#socket-port", redis.Port.ToString());
            await page.ClickAsync("#socket-connect");
            var origin = Page(host).GetLeftPart(UriPartial.Authority);
            await Assertions.Expect(page.Locator("#socket-status")).ToHaveTextAsync(
                $"The server refused this page: origin {origin} is not allowed; add it to 'origins' in the ws2s config (HTTP 403).");
        }
    }

    [SkippableFact]
    public async Task The_console_fits_a_phone_has_keyboard_tabs_and_readable_contrast()
    {
        await using var host = await StartHostAsync();
        var page = await Browser.NewPageAsync(new() { ViewportSize = new() { Width = 390, Height = 844 } });
        await page.GotoAsync(Page(host).ToString());
        foreach (var tab in new[] { "#tab-socket", "#tab-redis" })
        {
            await page.ClickAsync(tab);
            Assert.True(await page.EvaluateAsync<bool>("() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"),
                $"{tab}: the page scrolls sideways at 390 px");
        }

        // Arrow keys move between the tabs, and only the selected one is in the Tab order.
        await page.FocusAsync("#tab-redis");
        await page.Keyboard.PressAsync("ArrowRight");
        await Assertions.Expect(page.Locator("#tab-socket")).ToHaveAttributeAsync("aria-selected", "true");
        await Assertions.Expect(page.Locator("#tab-socket")).ToBeFocusedAsync();
        await Assertions.Expect(page.Locator("#panel-socket")).ToBeVisibleAsync();
        await page.Keyboard.PressAsync("ArrowLeft");
        await Assertions.Expect(page.Locator("#tab-redis")).ToHaveAttributeAsync("aria-selected", "true");
        await Assertions.Expect(page.Locator("#tab-socket")).ToHaveAttributeAsync("tabindex", "-1");

        // Contrast (WCAG 2.1): text at least 4.5:1 against the background it sits on, input borders at least 3:1.
        var worst = await page.EvaluateAsync<double[]>("""
            () => {
              const rgb = (c) => c.match(/[\d.]+/g).slice(0, 3).map(Number);
              const lum = (c) => { const [r, g, b] = rgb(c).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
              const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
              const background = (el) => { for (; el; el = el.parentElement) { const c = getComputedStyle(el).backgroundColor; if (!c.endsWith(", 0)") && c !== "transparent") return c; } return "rgb(255, 255, 255)"; };
              let text = 99, border = 99;
              for (const el of document.querySelectorAll("label, .status, .muted, h1, nav button, button, p, span, time, select")) {
                if (!el.offsetParent || el.disabled || !el.textContent.trim()) continue;
                text = Math.min(text, ratio(getComputedStyle(el).color, background(el)));
              }
              for (const el of document.querySelectorAll("input:not([type=checkbox]), select"))
                if (el.offsetParent) border = Math.min(border, ratio(getComputedStyle(el).borderTopColor, background(el.parentElement)));
              return [text, border];
            }
            """);
        Assert.True(worst[0] >= 4.5, $"text contrast {worst[0]:F2}:1");
        Assert.True(worst[1] >= 3, $"input border contrast {worst[1]:F2}:1");
    }

    /// <summary>Opens the console's Redis tab and connects it to Redis on <paramref name="port"/>.</summary>
    private static async Task ConnectRedisTabAsync(IPage page, Ws2sHost host, int port)
    {
        await page.GotoAsync(Page(host).ToString());
        await page.ClickAsync("#tab-redis");
        await page.FillAsync("#redis-port", port.ToString());
        await page.ClickAsync("#redis-connect");
        await Assertions.Expect(page.Locator("#redis-status")).ToHaveTextAsync($"Connected to Redis at 127.0.0.1:{port}.");
    }

    /// <summary>Runs one command in the Redis tab's command box.</summary>
    private static async Task RunRedisAsync(IPage page, string command)
    {
        await page.FillAsync("#redis-command", command);
        await page.PressAsync("#redis-command", "Enter");
    }

    [SkippableFact]
    public async Task A_destination_refused_by_policy_names_the_config_keys_that_would_allow_it()
    {
        // Nothing is dialled: each of these is refused by the policy before any connect.
        const int allowed = 16001, denied = 16002, local = 16003;
        await using var host = await Ws2sHost.StartAsync(TestConfig.Defaults.With(o =>
        {
            o.Destinations.Allow = [$"127.0.0.1:{allowed}"];
            o.Destinations.Deny = [$"127.0.0.1:{denied}"];
            o.Tls.Required = [$"127.0.0.1:{allowed}"];
        }));
        var page = await Browser.NewPageAsync();
        await page.GotoAsync(Page(host).ToString());
        const string allowList = "once destinations.allow has a rule, only what it allows is reachable";
        foreach (var (target, port, rule, hint) in new[]
                 {
                     ("127.0.0.1", local, "loopback 127.0.0.0/8",
                         $"To allow it: \"allowConnectToServerLocal\": true in the ws2s config (every port of this machine but ws2s's own), or \"127.0.0.1:{local}\" in destinations.allow (only that; {allowList})."),
                     ("127.0.0.1", denied, $"deny rule 127.0.0.1:{denied}",
                         $"destinations.deny in the ws2s config has the rule \"127.0.0.1:{denied}\", which refuses it whatever allows it: take it out (or narrow it) to allow this destination."),
                     ("127.0.0.1", allowed, $"tls.required 127.0.0.1:{allowed}: connect with \"tls\": true",
                         "The ws2s config's tls.required lists it: connect with TLS (\"tls\": true), or take the rule out of tls.required."),
                     ("10.1.2.3", 6379, "private network 10.0.0.0/8",
                         $"To allow it: \"10.1.2.3:6379\" in destinations.allow in the ws2s config ({allowList})."),
                     ("1.1.1.1", 80, "not in the allow list", "To allow it: \"1.1.1.1:80\" in destinations.allow in the ws2s config."),
                 })
        {
            await page.FillAsync("#socket-host", target);
            await page.FillAsync("#socket-port", port.ToString());
            await page.ClickAsync("#socket-connect");
            await Assertions.Expect(page.Locator("#socket-status")).ToHaveTextAsync(
                $"Refused by the server's policy: ws2s refuse to connect target host: {target}, cause that's a dangerous operation ({rule}) (code 4). {hint}");
            await Assertions.Expect(page.Locator("#socket-connect")).ToBeEnabledAsync();
        }

        // The Redis tab says the same.
        await page.ClickAsync("#tab-redis");
        await page.FillAsync("#redis-port", local.ToString());
        await page.ClickAsync("#redis-connect");
        await Assertions.Expect(page.Locator("#redis-status")).ToContainTextAsync(
            $"(loopback 127.0.0.0/8) (code 4). To allow it: \"allowConnectToServerLocal\": true in the ws2s config");
    }
}
