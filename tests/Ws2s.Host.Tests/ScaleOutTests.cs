using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text.RegularExpressions;

namespace Ws2s.Host.Tests;

/// <summary>
/// Two ws2s instances behind a real HAProxy (Debian's haproxy, with deploy/haproxy.cfg), on loopback:
/// sessions spread over both; one instance SIGTERMed closes its clients with 1001, they reconnect to
/// the other, and the survivor's sessions are untouched.
/// </summary>
[Collection(nameof(OperationsTests))]
public sealed class ScaleOutTests
{
    /// <summary>
    /// One ws2s instance with a management port, allowed to reach the loopback echo peer, trusting
    /// HAProxy (on loopback) to name its clients with the PROXY protocol.
    /// </summary>
    /// <remarks>Its resume tokens name it by <paramref name="name"/>, as deploy/haproxy.cfg's server lines do.</remarks>
    private static async Task<(ServerProcess Server, Uri Url, Uri Management)> StartInstanceAsync(string directory, string name, int maxSessionsPerClient = 256)
    {
        var config = Path.Combine(directory, name + ".json");
        await File.WriteAllTextAsync(config, TestConfig.Loopback
            .Serving(s => s.Management = new() { Port = 0 })
            .With(o =>
            {
                o.Origins = ["*"];
                o.TrustedProxies = ["127.0.0.1"];
                o.Limits.MaxSessionsPerClient = maxSessionsPerClient;
                o.Resume.Instance = name;
            }));
        var server = ServerProcess.Start(["--config", config]);
        return (server, await server.ListeningUrlAsync(), await server.ManagementUrlAsync());
    }

    /// <summary>HAProxy with the shipped configuration (deploy/haproxy.cfg), pointed at this test's instances; returns its front port.</summary>
    private static async Task<(Process HaProxy, int Front)> StartHaProxyAsync(string directory,
        (Uri Url, Uri Management) first, (Uri Url, Uri Management) second)
    {
        var front = Loopback.FreePort();
        var config = (await File.ReadAllTextAsync(Path.Combine(Repository.Root, "deploy", "haproxy.cfg")))
            .Replace("bind 0.0.0.0:3613", $"bind 127.0.0.1:{front}")
            .Replace("127.0.0.1:13613 check port 13614", $"127.0.0.1:{first.Url.Port} check port {first.Management.Port}")
            .Replace("127.0.0.1:23613 check port 23614", $"127.0.0.1:{second.Url.Port} check port {second.Management.Port}")
            .Replace("maxconn 50000", "maxconn 1000");
        var cfg = Path.Combine(directory, "haproxy.cfg");
        await File.WriteAllTextAsync(cfg, config);
        var haproxy = Process.Start(new ProcessStartInfo("/usr/sbin/haproxy", ["-f", cfg, "-db"]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        _ = haproxy.StandardOutput.ReadToEndAsync();
        _ = haproxy.StandardError.ReadToEndAsync();
        await Loopback.WaitUntilListeningAsync(front);
        return (haproxy, front);
    }

    private static async Task<int> ActiveSessionsAsync(Uri management)
    {
        using var http = new HttpClient();
        var metrics = await http.GetStringAsync(new Uri(management, "/metrics"));
        var match = Regex.Match(metrics, @"ws2s_sessions_active\{[^}]*\} (\d+)");
        return match.Success ? int.Parse(match.Groups[1].Value) : 0;
    }

    /// <summary>
    /// Two ws2sd instances (<c>ws2s-1</c>, <c>ws2s-2</c>: their resume.instance names, as deploy/haproxy.cfg's server lines) behind
    /// the real HAProxy with the shipped configuration, and an echo peer, for <paramref name="test"/>; everything stopped after.
    /// </summary>
    private static async Task BehindHaProxyAsync(
        Func<(ServerProcess Server, Uri Url, Uri Management), (ServerProcess Server, Uri Url, Uri Management), Uri, Peer, Task> test)
    {
        Requirements.Need("/usr/sbin/haproxy", "haproxy");
        var directory = Directory.CreateTempSubdirectory("ws2s-haproxy-").FullName;
        using var echo = Peer.Echo();
        var first = await StartInstanceAsync(directory, "ws2s-1");
        await using var firstServer = first.Server;
        var second = await StartInstanceAsync(directory, "ws2s-2");
        await using var secondServer = second.Server;
        var (haproxy, front) = await StartHaProxyAsync(directory, (first.Url, first.Management), (second.Url, second.Management));
        try
        {
            await test(first, second, new Uri($"ws://127.0.0.1:{front}/"), echo);
        }
        finally
        {
            haproxy.Kill();
            await haproxy.WaitForExitAsync();
            Directory.Delete(directory, recursive: true);
        }
    }

    [SkippableFact]
    public async Task Behind_HAProxy_sessions_spread_and_a_stopped_instance_hands_its_clients_to_the_other()
    {
        await BehindHaProxyAsync(async (first, second, entry, echo) =>
        {
            var clients = new List<WsClient>();
            for (var i = 0; i < 10; i++) clients.Add(await ConnectThroughAsync(entry, echo.Port));

            var onFirst = await ActiveSessionsAsync(first.Management);
            var onSecond = await ActiveSessionsAsync(second.Management);
            Assert.True(onFirst > 0 && onSecond > 0, $"sessions did not spread: {onFirst} and {onSecond}");
            Assert.Equal(10, onFirst + onSecond);

            // Every client listens; the stopped instance's clients hear 1001, the others hear nothing…
            var listening = clients.ToDictionary(c => c, c => c.ReceiveAsync());
            await first.Server.TerminateAsync();
            var closed = new List<WsClient>();
            while (closed.Count < onFirst)
            {
                var done = await Task.WhenAny(listening.Where(l => !closed.Contains(l.Key)).Select(l => l.Value));
                var client = listening.Single(l => l.Value == done).Key;
                var message = await done;
                Assert.Equal(WebSocketMessageType.Close, message.Type);
                Assert.Equal(1001, message.CloseStatus);
                closed.Add(client);
            }
            Assert.Equal(0, await first.Server.ExitCodeAsync());

            // …until they speak: the survivor's sessions are untouched.
            foreach (var (client, heard) in listening.Where(l => !closed.Contains(l.Key)))
            {
                await client.SendAsync(new { command = "ping" });
                Assert.Equal("""{"success":true,"code":0,"message":"ping done"}""", (await heard).Text);
            }

            // The closed clients come back through HAProxy and land on the survivor.
            foreach (var client in closed) await client.DisposeAsync();
            for (var i = 0; i < closed.Count; i++) clients.Add(await ConnectThroughAsync(entry, echo.Port));
            Assert.Equal(10, await ActiveSessionsAsync(second.Management));
            foreach (var client in clients) await client.DisposeAsync();
        });
    }

    /// <summary>
    /// Issue 25: a resume through HAProxy reaches the instance that holds the session, by the <c>?instance=</c> the client
    /// adds (deploy/haproxy.cfg routes on it), whichever instance that is; sent to the other one, it is refused in words that
    /// say so, and the session is still there to resume.
    /// </summary>
    [SkippableFact]
    public async Task Behind_HAProxy_a_resume_reaches_the_instance_that_holds_the_session()
    {
        await BehindHaProxyAsync(async (first, second, entry, echo) =>
        {
            var held = new List<(WsClient Client, string Token)>();
            for (var i = 0; i < 6; i++)
            {
                var client = await WsClient.ConnectAsync(entry);
                await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = echo.Port, resumable = true });
                var answer = await client.ReceiveJsonAsync();
                held.Add((client, (string)answer["resume"]!));
            }
            var instances = held.Select(h => h.Token[..h.Token.IndexOf('.')]).ToHashSet();
            Assert.True(instances.SetEquals(["ws2s-1", "ws2s-2"]), $"sessions did not spread: {string.Join(", ", instances)}");
            foreach (var (client, token) in held)
            {
                client.Socket.Abort();
                var instance = token[..token.IndexOf('.')];
                var other = instance == "ws2s-1" ? "ws2s-2" : "ws2s-1";
                await using (var astray = await WsClient.ConnectAsync(new Uri(entry, $"/?instance={other}")))
                {
                    await astray.SendAsync(new { command = "resume", token, received = 0 });
                    await astray.ExpectAsync($$"""{"success":false,"code":9,"message":"resume failed: this token is for instance {{instance}}; the balancer must route by ?instance="}""");
                }
                await using var back = await WsClient.ConnectAsync(new Uri(entry, $"/?instance={instance}"));
                await back.SendAsync(new { command = "resume", token, received = 0 });
                Assert.Equal("resume done", (string)(await back.ReceiveJsonAsync())["message"]!);
                await back.SendAsync(new { command = "send", data = "hi" });
                var echoed = new MemoryStream();
                await back.ExpectAnswerAsync("""{"success":true,"code":0,"message":"send done"}""", echoed);
                await back.ReadDataAsync(echoed, 2);
            }
        });
    }

    [SkippableFact]
    public async Task Behind_HAProxy_each_client_is_itself_for_per_client_limits_and_logs()
    {
        Requirements.Need("/usr/sbin/haproxy", "haproxy");
        var directory = Directory.CreateTempSubdirectory("ws2s-haproxy-").FullName;
        // One instance behind both of HAProxy's server lines, one session per client.
        var instance = await StartInstanceAsync(directory, "only", maxSessionsPerClient: 1);
        await using var server = instance.Server;
        var (haproxy, front) = await StartHaProxyAsync(directory, (instance.Url, instance.Management), (instance.Url, instance.Management));
        try
        {
            // Clients from two loopback addresses: all reach ws2s from HAProxy's 127.0.0.1.
            var entry = new Uri($"ws://127.0.0.1:{front}/");
            using var alice = await RawWebSocket.OpenAsync(entry, source: IPAddress.Parse("127.0.0.5"));
            using var bob = await RawWebSocket.OpenAsync(entry, source: IPAddress.Parse("127.0.0.6"));
            using var aliceAgain = await RawWebSocket.OpenAsync(entry, source: IPAddress.Parse("127.0.0.5"));
            Assert.StartsWith("HTTP/1.1 101", alice.Status);
            Assert.StartsWith("HTTP/1.1 101", bob.Status);
            Assert.StartsWith("HTTP/1.1 503", aliceAgain.Status);

            await bob.Socket!.CloseAsync(WebSocketCloseStatus.NormalClosure, "", CancellationToken.None);
            await server.WaitForLineAsync(line => line.Contains("session from 127.0.0.6:"));
        }
        finally
        {
            haproxy.Kill();
            await haproxy.WaitForExitAsync();
            Directory.Delete(directory, recursive: true);
        }
    }

    private static async Task<WsClient> ConnectThroughAsync(Uri entry, int echoPort)
    {
        var client = await WsClient.ConnectAsync(entry, origin: null);
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = echoPort });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
        return client;
    }
}
