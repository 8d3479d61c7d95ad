using System.Text.RegularExpressions;

namespace Ws2s.Host.Tests;

/// <summary>
/// What the metrics count comes from the core (Observe effects), not from re-reading replies: so
/// websockify sessions, whose answers become closes, are counted too, and a connect refused before
/// it started records no duration. ws2sd runs as a child, so no other host's meter is in the way.
/// </summary>
public sealed class MetricsTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("ws2s-metrics-").FullName;

    public void Dispose() => Directory.Delete(_home, recursive: true);

    private static long Read(string metrics, string series)
    {
        var match = Regex.Match(metrics, "^" + Regex.Escape(series).Replace("\\{", "\\{[^}]*?") + " (\\d+)", RegexOptions.Multiline);
        return match.Success ? long.Parse(match.Groups[1].Value) : 0;
    }

    [Fact]
    public async Task Websockify_connects_are_counted_and_a_connect_refused_before_it_starts_has_no_duration()
    {
        using var echo = Peer.Echo();
        var config = Path.Combine(_home, "config.json");
        await File.WriteAllTextAsync(config, TestConfig.Loopback.With(o =>
        {
            o.RawTargets = new() { ["echo"] = $"127.0.0.1:{echo.Port}" };
            o.Ssh.AllowTargets = ["10.9.9.9:22"];
        }));
        await using var server = ServerProcess.Start(["--config", config], home: _home);
        var url = await server.ListeningUrlAsync();
        using var http = new HttpClient();
        var metricsUrl = new UriBuilder(url) { Scheme = "http", Path = "/metrics" }.Uri;

        // Before any session, every series is there at 0 (a dashboard has something to show).
        var first = await http.GetStringAsync(metricsUrl);
        foreach (var series in new[] { "ws2s_sessions_active{}", "ws2s_sessions_total{}", "ws2s_connects_total{outcome=\"2\"}",
                     "ws2s_connections_dropped_total{reason=\"limit\"}", "ws2s_upgrades_refused_total{reason=\"origin\"}",
                     "ws2s_bytes_total{direction=\"to_peer\"}", "ws2s_pending_bytes{}" })
            Assert.True(Regex.IsMatch(first, "^" + Regex.Escape(series).Replace("\\{", "\\{[^}]*?") + " 0$", RegexOptions.Multiline), $"{series} is not 0 in:\n{first}");

        await using (var vnc = await WsClient.ConnectAsync(new Uri(url, "/websockify?token=echo"), "http://localhost", "binary"))
        {
            await vnc.SendBinaryAsync("ping"u8.ToArray());
            Assert.Equal("ping"u8.ToArray(), (await vnc.ReceiveAsync()).Bytes);
        }
        await using (var client = await WsClient.ConnectAsync(url))
        {
            // Refused by ssh.allowTargets before anything starts: counted as code 4, no duration.
            await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = 22, ssh_host = "127.0.0.1", ssh_username = "u", ssh_password = "p" });
            Assert.Equal(4, (int)(await client.ReceiveJsonAsync())["code"]!);
        }

        var metrics = await http.GetStringAsync(metricsUrl);
        Assert.True(1 == Read(metrics, "ws2s_connects_total{outcome=\"0\"}"), metrics);
        Assert.True(1 == Read(metrics, "ws2s_connects_total{outcome=\"4\"}"), metrics);
        Assert.True(1 == Read(metrics, "ws2s_connect_duration_seconds_count{}"), metrics);
    }

    /// <summary>
    /// Sessions by endpoint, Wisp streams by type and dropped datagrams, in ws2sd's own process (in-process hosts share
    /// OpenTelemetry's listeners, which find the meter by name: a host beside another may report the other's counts).
    /// </summary>
    [Fact]
    public async Task Wisp_streams_sessions_by_endpoint_and_dropped_datagrams_are_counted()
    {
        using var echo = Peer.Echo();
        using var udpEcho = new UdpEcho();
        var config = Path.Combine(_home, "config.json");
        await File.WriteAllTextAsync(config, TestConfig.Loopback.With(o =>
        {
            o.Udp.Enabled = true;
            o.Udp.MaxPacketsPerSecond = 2;
            o.Wsproxy.Path = "/wisp/";
        }));
        await using var server = ServerProcess.Start(["--config", config], home: _home);
        var url = await server.ListeningUrlAsync();
        using var http = new HttpClient();
        var metricsUrl = new UriBuilder(url) { Scheme = "http", Path = "/metrics" }.Uri;
        var first = await http.GetStringAsync(metricsUrl);
        foreach (var endpoint in new[] { "ws2s", "websockify", "wisp", "wsproxy" })
            Assert.True(Regex.IsMatch(first, $@"(?m)^ws2s_sessions_by_endpoint_total\{{[^}}]*endpoint=""{endpoint}""[^}}]*\}} 0$"), first);

        var (wisp, _) = await WispClient.OpenAsync(new Uri(url, "/wisp/"));
        await using (wisp)
        {
            await wisp.SendBinaryAsync(WispClient.Connect(1, echo.Port, "127.0.0.1"));
            await wisp.SendBinaryAsync(WispClient.Connect(2, echo.Port, "127.0.0.1"));
            await wisp.SendBinaryAsync(WispClient.Connect(3, udpEcho.Port, "127.0.0.1", kind: 2));
            for (var i = 0; i < 5; i++) await wisp.SendBinaryAsync(WispClient.Data(3, [(byte)i])); // 2 per second may leave
            await wisp.SendBinaryAsync(WispClient.Data(2, "x"u8));
            await wisp.ReceiveOnAsync(2, 2);
        }
        await using (var wsproxy = await WsClient.ConnectAsync(new Uri(url, $"/wisp/127.0.0.1:{echo.Port}")))
        {
            await wsproxy.SendBinaryAsync("y"u8.ToArray());
            await wsproxy.ReceiveAsync();
        }
        var metrics = await http.GetStringAsync(metricsUrl);
        Assert.True(1 == Read(metrics, "ws2s_sessions_by_endpoint_total{endpoint=\"wisp\"}"), metrics);
        Assert.True(1 == Read(metrics, "ws2s_sessions_by_endpoint_total{endpoint=\"wsproxy\"}"), metrics);
        Assert.True(2 == Read(metrics, "ws2s_wisp_streams_total{type=\"tcp\"}"), metrics);
        Assert.True(1 == Read(metrics, "ws2s_wisp_streams_total{type=\"udp\"}"), metrics);
        Assert.True(Read(metrics, "ws2s_udp_dropped_total{}") >= 2, metrics); // 5 sent at once, 2 allowed (a refill may let one more)
    }
}
