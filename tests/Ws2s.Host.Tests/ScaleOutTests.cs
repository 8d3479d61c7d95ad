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
    private sealed class Instance : IAsyncDisposable
    {
        public required Process Process { get; init; }
        public required Uri Url { get; init; }
        public required Uri Management { get; init; }

        public static async Task<Instance> StartAsync(string directory, string name)
        {
            var config = Path.Combine(directory, name + ".json");
            await File.WriteAllTextAsync(config, """
                {"listen":{"host":"127.0.0.1","port":0},"management":{"host":"127.0.0.1","port":0},
                 "allowConnectToServerLocal":true,"origins":["*"],"shutdownTimeoutSeconds":10}
                """);
            var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "ws2sd.dll"), "--config", config }) info.ArgumentList.Add(a);
            var process = Process.Start(info)!;
            Uri? url = null, management = null;
            while ((url is null || management is null) && await process.StandardOutput.ReadLineAsync() is { } line)
            {
                if (line.StartsWith("ws2s listening on ", StringComparison.Ordinal)) url = new Uri(line["ws2s listening on ".Length..].Split(' ')[0]);
                if (line.StartsWith("ws2s management", StringComparison.Ordinal)) management = new Uri(line.Split(' ').Last());
            }
            _ = process.StandardOutput.ReadToEndAsync();
            _ = process.StandardError.ReadToEndAsync();
            return new Instance { Process = process, Url = url!, Management = management! };
        }

        public async Task<int> ActiveSessionsAsync()
        {
            using var http = new HttpClient();
            var metrics = await http.GetStringAsync(new Uri(Management, "/metrics"));
            var match = Regex.Match(metrics, @"ws2s_sessions_active\{[^}]*\} (\d+)");
            return match.Success ? int.Parse(match.Groups[1].Value) : 0;
        }

        public async ValueTask DisposeAsync()
        {
            if (!Process.HasExited) Process.Kill();
            await Process.WaitForExitAsync();
            Process.Dispose();
        }
    }

    [SkippableFact]
    public async Task Behind_HAProxy_sessions_spread_and_a_stopped_instance_hands_its_clients_to_the_other()
    {
        Requirements.Need("/usr/sbin/haproxy", "haproxy");

        var directory = Directory.CreateTempSubdirectory("ws2s-haproxy-").FullName;
        using var echo = Peer.Echo();
        await using var first = await Instance.StartAsync(directory, "first");
        await using var second = await Instance.StartAsync(directory, "second");
        var front = RedisServer.FreePort();

        // The shipped configuration, pointed at this test's ports.
        var config = (await File.ReadAllTextAsync(Path.Combine(Repository.Root, "deploy", "haproxy.cfg")))
            .Replace("bind 0.0.0.0:3613", $"bind 127.0.0.1:{front}")
            .Replace("127.0.0.1:13613 check port 13614", $"127.0.0.1:{first.Url.Port} check port {first.Management.Port}")
            .Replace("127.0.0.1:23613 check port 23614", $"127.0.0.1:{second.Url.Port} check port {second.Management.Port}")
            .Replace("maxconn 50000", "maxconn 1000");
        var cfg = Path.Combine(directory, "haproxy.cfg");
        await File.WriteAllTextAsync(cfg, config);
        using var haproxy = Process.Start(new ProcessStartInfo("/usr/sbin/haproxy", ["-f", cfg, "-db"]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        _ = haproxy.StandardOutput.ReadToEndAsync();
        _ = haproxy.StandardError.ReadToEndAsync();
        try
        {
            var entry = new Uri($"ws://127.0.0.1:{front}/");
            await RedisServer.WaitUntilListeningAsync(front);
            var clients = new List<WsClient>();
            for (var i = 0; i < 10; i++) clients.Add(await ConnectThroughAsync(entry, echo.Port));

            var onFirst = await first.ActiveSessionsAsync();
            var onSecond = await second.ActiveSessionsAsync();
            Assert.True(onFirst > 0 && onSecond > 0, $"sessions did not spread: {onFirst} and {onSecond}");
            Assert.Equal(10, onFirst + onSecond);

            // Every client listens; the stopped instance's clients hear 1001, the others hear nothing…
            var listening = clients.ToDictionary(c => c, c => c.ReceiveAsync());
            using (var kill = Process.Start("kill", ["-TERM", first.Process.Id.ToString()])) await kill.WaitForExitAsync();
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
            await first.Process.WaitForExitAsync(new CancellationTokenSource(WsClient.Patience).Token);
            Assert.Equal(0, first.Process.ExitCode);

            // …until they speak: the survivor's sessions are untouched.
            foreach (var (client, heard) in listening.Where(l => !closed.Contains(l.Key)))
            {
                await client.SendAsync(new { command = "ping" });
                Assert.Equal("""{"success":true,"code":0,"message":"ping done"}""", (await heard).Text);
            }

            // The closed clients come back through HAProxy and land on the survivor.
            foreach (var client in closed) await client.DisposeAsync();
            for (var i = 0; i < closed.Count; i++) clients.Add(await ConnectThroughAsync(entry, echo.Port));
            Assert.Equal(10, await second.ActiveSessionsAsync());
            foreach (var client in clients) await client.DisposeAsync();
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
