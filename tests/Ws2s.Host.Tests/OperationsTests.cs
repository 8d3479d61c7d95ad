using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Ws2s.Host.Tests;

/// <summary>Running it for real: TLS, metrics, health, logs, packaging.</summary>
/// <remarks>Alone, not beside other tests: meters with the same name in one process are seen by every server's exporter.</remarks>
[Collection(nameof(OperationsTests))]
public sealed class OperationsTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("ws2s-ops-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>A self-signed certificate for 127.0.0.1 and localhost, written as PEM files.</summary>
    private (string Certificate, string Key, X509Certificate2 Cert) MakeCertificate()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=ws2s test", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        var certificate = Path.Combine(_directory, "cert.pem");
        var keyFile = Path.Combine(_directory, "key.pem");
        File.WriteAllText(certificate, cert.ExportCertificatePem());
        File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem());
        return (certificate, keyFile, X509CertificateLoader.LoadCertificate(cert.RawData));
    }

    /// <summary>Validates the server's certificate against exactly one trusted root, as a client pinned to it would.</summary>
    private static RemoteCertificateValidationCallback TrustOnly(X509Certificate2 root) => (_, certificate, _, errors) =>
    {
        if (certificate is null || (errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0) return false;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(root);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
    };

    [Fact]
    public async Task A_TLS_endpoint_serves_wss_beside_the_plain_one_and_the_client_validates_its_certificate()
    {
        var (certificate, key, cert) = MakeCertificate();
        await using var host = await Ws2sHost.StartAsync(TestConfig.Defaults
            .Serving(s => s.Endpoints = [new() { Host = "127.0.0.1", Port = 0, Certificate = certificate, Key = key }]));
        var wss = host.Urls.Single(u => u.Scheme == "wss");
        Assert.Contains(host.Urls, u => u.Scheme == "ws");

        using (var socket = new ClientWebSocket())
        {
            socket.Options.SetRequestHeader("Origin", "https://localhost");
            socket.Options.RemoteCertificateValidationCallback = TrustOnly(cert);
            await socket.ConnectAsync(wss, CancellationToken.None);
            await socket.SendAsync("""{"command":"ping"}"""u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
            var buffer = new byte[256];
            var result = await socket.ReceiveAsync(buffer, new CancellationTokenSource(WsClient.Patience).Token);
            Assert.Equal("""{"success":true,"code":0,"message":"ping done"}""", System.Text.Encoding.UTF8.GetString(buffer, 0, result.Count));
        }

        // A client that trusts another root refuses this server: the validation above is real.
        using var other = ECDsa.Create();
        var stranger = new CertificateRequest("CN=stranger", other, HashAlgorithmName.SHA256).CreateSelfSigned(DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddDays(1));
        using var doubting = new ClientWebSocket();
        doubting.Options.RemoteCertificateValidationCallback = TrustOnly(stranger);
        await Assert.ThrowsAnyAsync<Exception>(() => doubting.ConnectAsync(wss, CancellationToken.None));
    }

    [Fact]
    public async Task Metrics_count_sessions_connects_by_outcome_bytes_and_refusals_in_Prometheus_text()
    {
        using var echo = Peer.Echo();
        using var refused = new RefusedPort();
        await using var host = await Ws2sHost.StartAsync();
        await using (var client = await host.ConnectAsync())
        {
            await client.EchoThroughAsync(echo.Port, "12345");
            await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = refused.Port });
            await client.ExpectAsync("""{"success":false,"code":2,"message":"connection refused"}""");
            await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = host.Url.Port });
            Assert.Equal(4, (int)(await client.ReceiveJsonAsync())["code"]!);
        }
        using var http = new HttpClient();
        Assert.Equal(403, await HandshakeStatusAsync(host.Url, "https://evil.example"));

        // The session's end is counted once the server has finished it: poll the endpoint until it shows.
        string metrics;
        var deadline = DateTime.UtcNow + WsClient.Patience;
        do metrics = await http.GetStringAsync(Http(host, "/metrics"));
        while (!metrics.Contains("ws2s_sessions_active{otel_scope_name=\"Ws2s\"} 0") && DateTime.UtcNow < deadline);

        Assert.True(metrics.Contains("ws2s_sessions_total{otel_scope_name=\"Ws2s\"} 1"), metrics);
        Assert.Contains("ws2s_sessions_active{otel_scope_name=\"Ws2s\"} 0", metrics);
        Assert.Contains("ws2s_connects_total{otel_scope_name=\"Ws2s\",outcome=\"0\"} 1", metrics);
        Assert.Contains("ws2s_connects_total{otel_scope_name=\"Ws2s\",outcome=\"2\"} 1", metrics);
        Assert.Contains("ws2s_connects_total{otel_scope_name=\"Ws2s\",outcome=\"4\"} 1", metrics);
        Assert.Contains("ws2s_policy_refusals_total{otel_scope_name=\"Ws2s\"} 1", metrics);
        Assert.Contains("direction=\"to_peer\"} 5", metrics);
        Assert.Contains("direction=\"to_client\"} 5", metrics);
        Assert.Contains("ws2s_upgrades_refused_total{otel_scope_name=\"Ws2s\",reason=\"origin\"} 1", metrics);
        Assert.Contains("ws2s_connect_duration_seconds_count{otel_scope_name=\"Ws2s\"} 3", metrics);
    }

    [Fact]
    public async Task Health_and_readiness_answer_and_can_move_to_a_management_port()
    {
        await using var host = await Ws2sHost.StartAsync(
            TestConfig.Defaults.Serving(s => s.Management = new() { Port = 0 }));
        using var http = new HttpClient();
        // With a management port the main port no longer serves them.
        Assert.Equal(HttpStatusCode.UpgradeRequired, (await http.GetAsync(Http(host, "/healthz"))).StatusCode);

        var management = host.ManagementUrl!;
        Assert.DoesNotContain(host.Urls, u => u.Port == management.Port);
        Assert.Equal("ok\n", await http.GetStringAsync(new Uri(management, "/healthz")));
        Assert.Equal("ready\n", await http.GetStringAsync(new Uri(management, "/readyz")));
        Assert.Contains("ws2s_", await http.GetStringAsync(new Uri(management, "/metrics")) + "ws2s_");

        // Once the server starts stopping it reports itself not ready.
        var readiness = host.Services.GetRequiredService<Ws2s.AspNetCore.Telemetry.Readiness>();
        host.Services.GetRequiredService<IHostApplicationLifetime>().StopApplication();
        Assert.True(readiness.Draining);
    }

    /// <summary>
    /// Attack (issue 20, 6): with a management port set, the public port still answered <c>/METRICS</c>,
    /// <c>/Metrics</c>, <c>/metrics/</c>, <c>/HEALTHZ</c>, <c>/healthz/</c>, <c>/READYZ</c>, <c>/readyz/</c>.
    /// Whatever spelling the router takes, only the management port serves them.
    /// </summary>
    [Fact]
    public async Task With_a_management_port_no_spelling_of_a_management_path_is_served_on_the_public_port()
    {
        await using var host = await Ws2sHost.StartAsync(
            TestConfig.Defaults.Serving(s => s.Management = new() { Port = 0 }));
        using var http = new HttpClient();
        foreach (var path in new[] { "/metrics", "/METRICS", "/Metrics", "/metrics/", "/%6detrics", "/HEALTHZ", "/healthz/", "/READYZ", "/readyz/" })
        {
            using var response = await http.GetAsync(Http(host, path));
            var body = await response.Content.ReadAsStringAsync();
            Assert.False(response.IsSuccessStatusCode, $"{path}: {(int)response.StatusCode} {body}");
            Assert.DoesNotContain("ws2s_", body);
            Assert.NotEqual("ok\n", body);
        }
        // And the management port serves nothing else, in any spelling.
        foreach (var path in new[] { "/", "/.ws2s/admission", "/index.html" })
            Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(new Uri(host.ManagementUrl!, path))).StatusCode);
        Assert.Equal("ok\n", await http.GetStringAsync(new Uri(host.ManagementUrl!, "/HEALTHZ")));
    }

    [Fact]
    public async Task JSON_logs_have_one_line_per_session_and_never_a_token()
    {
        const string token = "very-secret-token-7f3a";
        var config = Path.Combine(_directory, "config.json");
        await File.WriteAllTextAsync(config,
            TestConfig.Defaults.With(o => o.Tokens = [token]).Logging("Default", "Debug").Logging("Microsoft", "Debug"));
        await using var server = ServerProcess.Start(["--config", config, "--log-format", "json"]);
        var url = await server.ListeningUrlAsync();

        await using (var client = await WsClient.ConnectAsync(new Uri(url, $"/path?token={token}")))
        {
            await client.SendAsync(new { command = "ping" });
            await client.ExpectAsync("""{"success":true,"code":0,"message":"ping done"}""");
        }
        Assert.Equal(401, await HandshakeStatusAsync(new Uri(url, "/?token=wrong-" + token), "http://localhost"));

        var sessionLine = await server.WaitForLineAsync(l => l.Contains("ended after"));
        await server.TerminateAsync();
        Assert.Equal(0, await server.ExitCodeAsync());

        using var json = JsonDocument.Parse(sessionLine);
        Assert.Equal("Ws2s.Session", json.RootElement.GetProperty("Category").GetString());
        Assert.Contains("/path", json.RootElement.GetProperty("Message").GetString());
        Assert.DoesNotContain(server.Output, l => l.Contains(token));
    }

    [Fact]
    public async Task The_server_packs_as_a_dotnet_tool_named_ws2sd_that_installs_and_runs()
    {
        var feed = Path.Combine(_directory, "feed");
        var tools = Path.Combine(_directory, "tools");
        var project = Path.Combine(Repository.Root, "src", "Ws2s.Host", "Ws2s.Host.csproj");
        Assert.Equal(0, await RunAsync("dotnet", "pack", project, "-c", "Release", "-o", feed, "-p:PackageOutputPath=" + feed));
        await File.WriteAllTextAsync(Path.Combine(_directory, "nuget.config"), $$"""
            <configuration><packageSources><clear /><add key="local" value="{{feed}}" /></packageSources></configuration>
            """);
        Assert.Equal(0, await RunAsync("dotnet", "tool", "install", "--tool-path", tools, "--configfile", Path.Combine(_directory, "nuget.config"), "ws2s"));
        var version = new ProcessStartInfo(Path.Combine(tools, "ws2sd"), "--version") { RedirectStandardOutput = true };
        using var ws2sd = Process.Start(version)!;
        Assert.StartsWith("ws2sd 1.", await ws2sd.StandardOutput.ReadToEndAsync());
        await ws2sd.WaitForExitAsync();
        Assert.Equal(0, ws2sd.ExitCode);
    }

    /// <summary>Runs a command to its end; fails the test with its output if it fails.</summary>
    private static async Task<int> RunAsync(string file, params string[] args)
    {
        var run = await Command.RunAsync(file, args, patience: TimeSpan.FromMinutes(5));
        if (run.Exit != 0) Assert.Fail($"{file} {string.Join(' ', args)} failed:\n{run.Output}\n{run.Errors}");
        return run.Exit;
    }

    private static Uri Http(Ws2sHost host, string path) => new UriBuilder(new Uri(host.Url, path)) { Scheme = "http" }.Uri;

    private static async Task<int> HandshakeStatusAsync(Uri url, string origin)
    {
        using var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        socket.Options.SetRequestHeader("Origin", origin);
        try { await socket.ConnectAsync(url, CancellationToken.None); }
        catch (WebSocketException) { }
        return (int)socket.HttpStatusCode;
    }
}

[CollectionDefinition(nameof(OperationsTests), DisableParallelization = true)]
public sealed class OperationsTestsRunAlone;
