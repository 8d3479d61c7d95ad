using Ws2s.AspNetCore.Configuration;
using Microsoft.Extensions.DependencyInjection;
using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;

namespace Ws2s.Host.Tests;

/// <summary>
/// TLS to the destination (<c>"tls": true</c>, <c>starttls</c>) against real TLS peers on loopback,
/// with certificates this test makes: a private CA, a leaf for <c>redis.test</c> and 127.0.0.1, an
/// expired leaf, a self-signed one. Each refusal is an attack that must fail with code 8 (or 4).
/// </summary>
public sealed class TlsTests : IDisposable
{
    private readonly TestPki _pki = new();

    public void Dispose() => _pki.Dispose();

    private static Task<Ws2sHost> StartAsync(Action<Ws2sOptions>? tls = null) => Ws2sHost.StartAsync(TestConfig.Loopback.With(tls ?? (_ => { })));

    /// <summary>Trusts the test CA (which issued the peers' certificates).</summary>
    private void TrustCa(Ws2sOptions options) => options.Tls.TrustedCertificates = [_pki.CaFile];

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_tls_connect_relays_plaintext_both_ways_in_json_and_binary_mode(bool binary)
    {
        using var peer = TlsPeer.Echo(_pki.Leaf);
        await using var host = await StartAsync(TrustCa);
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = peer.Port, tls = true, tlsServerName = "redis.test", binary });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
        if (binary)
        {
            await client.SendBinaryAsync("hello over tls"u8.ToArray());
            var echoed = await client.ReceiveAsync();
            Assert.Equal("hello over tls", echoed.Text);
        }
        else
        {
            await client.SendAsync(new { command = "send", data = "hello over tls" });
            var echoed = new MemoryStream();
            await client.ExpectAnswerAsync("""{"success":true,"code":0,"message":"send done"}""", echoed);
            await client.ReadDataAsync(echoed, 14);
            Assert.Equal("hello over tls", Encoding.UTF8.GetString(echoed.ToArray()));
        }
        // The peer saw plaintext after a real handshake: it decrypted what ws2s encrypted.
        Assert.True(TlsPeer.Handshakes > 0);
    }

    /// <summary>
    /// The attack: a TLS 1.2 peer asks to renegotiate, again and again if it likes. Each renegotiation is a handshake with
    /// its key exchange and certificate checks, run inside a read on the session's thread (a socket's event thread, shared
    /// with other sessions). ws2s refuses: the connection ends with code 5, in words, and nothing is renegotiated.
    /// </summary>
    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task A_peer_that_asks_to_renegotiate_is_cut_off_and_never_renegotiated_with()
    {
        var renegotiated = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var peer = TlsPeer.Renegotiator(_pki.Leaf, renegotiated);
        await using var host = await StartAsync(TrustCa);
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = peer.Port, tls = true, tlsServerName = "redis.test", binary = true });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
        await client.SendBinaryAsync("before"u8.ToArray());
        Assert.Equal("before", (await client.ReceiveAsync()).Text);
        Assert.False(await renegotiated.Task.WaitAsync(WsClient.Patience));
        var closed = await client.ReceiveJsonAsync();
        Assert.Equal(5, (int)closed["code"]!);
    }

    [Fact]
    public async Task Many_tls_connects_in_a_row_never_relay_the_peers_handshake_bytes_to_the_client()
    {
        // The dial's plain reader and the handshake race for the first bytes: a reader that starts
        // after the handshake began stole the ServerHello and relayed it as recv data (found by the bench).
        using var peer = TlsPeer.Echo(_pki.Leaf);
        // ws2sd as its own process (Server GC, its own thread pool), where the bench met the race.
        var config = Path.Combine(Directory.CreateTempSubdirectory("ws2s-tls-race-").FullName, "config.json");
        await File.WriteAllTextAsync(config, TestConfig.Loopback.With(o =>
        {
            o.Origins = ["*"];
            TrustCa(o);
            o.Limits.MaxConnectsPerSecond = 0;
        }));
        await using var server = ServerProcess.Start(["--config", config]);
        var url = await server.ListeningUrlAsync();
        var sessions = Enumerable.Range(0, 8).Select(async _ =>
        {
            await using var client = await WsClient.ConnectAsync(url);
            for (var i = 0; i < 40; i++)
            {
                await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = peer.Port, tls = true, tlsServerName = "redis.test", binary = true });
                await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
                await client.SendBinaryAsync(Encoding.ASCII.GetBytes($"ping {i}"));
                Assert.Equal($"ping {i}", (await client.ReceiveAsync()).Text);
            }
        });
        await Task.WhenAll(sessions);
    }

    [Fact]
    public async Task A_peer_that_speaks_plaintext_instead_of_tls_fails_with_code_8_and_none_of_its_words_reach_the_client()
    {
        using var peer = Peer.Greeter(); // says "hello from peer\n" at once, no TLS
        await using var host = await StartAsync(TrustCa);
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = peer.Port, tls = true, tlsServerName = "redis.test" });
        var answer = await client.ReceiveJsonAsync(); // the very next message: no recv data before it
        Assert.True((int)answer["code"]! == 8 && ((string)answer["message"]!).StartsWith("tls failed: "), answer.ToJsonString());
    }

    [Fact]
    public async Task A_certificate_from_a_ca_the_server_does_not_trust_is_refused_with_code_8()
    {
        using var peer = TlsPeer.Echo(_pki.Leaf);
        await using var host = await StartAsync(); // the private CA is not configured
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = peer.Port, tls = true, tlsServerName = "redis.test" });
        await client.ExpectAsync("""{"success":false,"code":8,"message":"tls failed: certificate not trusted for redis.test"}""");
        // The session goes on: a send now has no connection (code 3), as after a failed connect.
        await client.SendAsync(new { command = "send", data = "x" });
        await client.ExpectAsync("""{"success":false,"code":3,"message":"illegal socket status, please connect again"}""");
    }

    [Fact]
    public async Task A_self_signed_certificate_is_refused_even_with_a_ca_configured()
    {
        using var peer = TlsPeer.Echo(_pki.SelfSigned);
        await using var host = await StartAsync(TrustCa);
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = peer.Port, tls = true, tlsServerName = "redis.test" });
        await client.ExpectAsync("""{"success":false,"code":8,"message":"tls failed: certificate not trusted for redis.test"}""");
    }

    [Fact]
    public async Task A_certificate_for_another_name_is_refused()
    {
        using var peer = TlsPeer.Echo(_pki.Leaf);
        await using var host = await StartAsync(TrustCa);
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = peer.Port, tls = true, tlsServerName = "bank.test" });
        await client.ExpectAsync("""{"success":false,"code":8,"message":"tls failed: certificate name does not match bank.test"}""");
    }

    [Fact]
    public async Task An_expired_certificate_is_refused()
    {
        using var peer = TlsPeer.Echo(_pki.Expired);
        await using var host = await StartAsync(TrustCa);
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = peer.Port, tls = true, tlsServerName = "redis.test" });
        await client.ExpectAsync("""{"success":false,"code":8,"message":"tls failed: certificate expired or not yet valid for redis.test"}""");
    }

    [Fact]
    public async Task A_pinned_destination_refuses_a_valid_certificate_that_is_not_pinned_and_accepts_the_pinned_one()
    {
        using var peer = TlsPeer.Echo(_pki.Leaf);
        var otherPin = Convert.ToBase64String(SHA256.HashData(_pki.SelfSigned.RawData));
        var leafKeyPin = Convert.ToBase64String(SHA256.HashData(_pki.Leaf.PublicKey.ExportSubjectPublicKeyInfo()));
        foreach (var (pin, expected) in new[]
                 {
                     (otherPin, """{"success":false,"code":8,"message":"tls failed: certificate does not match the pinned keys for redis.test"}"""),
                     ("sha256/" + leafKeyPin, """{"success":true,"code":0,"message":"connect done"}"""),
                 })
        {
            await using var host = await StartAsync(o =>
            {
                TrustCa(o);
                o.Tls.Pinned = [new() { Rule = "redis.test", Sha256 = [pin] }];
            });
            await using var client = await host.ConnectAsync();
            // Pins follow the TLS server name too: asking for the address does not dodge the name's pin.
            await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = peer.Port, tls = true, tlsServerName = "redis.test" });
            await client.ExpectAsync(expected);
        }
    }

    [Fact]
    public async Task A_destination_that_requires_tls_is_refused_without_it_under_any_spelling()
    {
        using var peer = Peer.Echo();
        await using var host = await StartAsync(o => o.Tls.Required = [$"127.0.0.0/8:{peer.Port}"]);
        await using var client = await host.ConnectAsync();
        foreach (var spelling in new[] { "127.0.0.1", "localhost", "::ffff:127.0.0.1", "127.1" })
        {
            await client.SendAsync(new { command = "connect", host = spelling, port = peer.Port });
            var answer = await client.ReceiveJsonAsync();
            Assert.True((int)answer["code"]! == 4 && ((string)answer["message"]!).Contains("tls.required"), $"{spelling}: {answer.ToJsonString()}");
        }
    }

    [Theory]
    [InlineData("good.example.com")]
    [InlineData("*.example.com")]
    public async Task A_certificate_that_names_a_pinned_host_must_match_its_pins_even_when_the_client_asks_by_address(string certificateName)
    {
        // The report's 11.22.33.66, on loopback: a trusted certificate for the address and for a pinned name.
        var address = IPAddress.Parse("127.0.0.66");
        using var certificate = _pki.IssueLeaf("good.example.com", [certificateName], [address], [TestPki.ServerAuth]);
        using var peer = TlsPeer.Echo(certificate, address);
        var otherPin = Convert.ToBase64String(SHA256.HashData(_pki.SelfSigned.RawData));
        var ownPin = Convert.ToBase64String(SHA256.HashData(certificate.PublicKey.ExportSubjectPublicKeyInfo()));
        foreach (var (pin, expected) in new[]
                 {
                     (otherPin, """{"success":false,"code":8,"message":"tls failed: certificate does not match the pinned keys for 127.0.0.66"}"""),
                     (ownPin, """{"success":true,"code":0,"message":"connect done"}"""),
                 })
        {
            await using var host = await StartAsync(o =>
            {
                TrustCa(o);
                o.Tls.Pinned = [new() { Rule = "good.example.com", Sha256 = [pin] }];
            });
            await using var client = await host.ConnectAsync();
            await client.SendAsync(new { command = "connect", host = "127.0.0.66", port = peer.Port, tls = true });
            await client.ExpectAsync(expected);
        }
    }

    [Theory]
    [InlineData("client-auth-only", "certificate for redis.test is not for server authentication (its extended key usage lacks serverAuth)")]
    [InlineData("cn-only", "certificate for redis.test has no subjectAltName (a name only in the subject's CN is not accepted)")]
    [InlineData("ca", "certificate for redis.test is a CA certificate, not a server's")]
    [InlineData("no-eku", null)]
    public async Task A_trusted_certificate_that_is_not_a_servers_is_refused_in_words(string shape, string? refusal)
    {
        var loopback = new[] { IPAddress.Loopback };
        using var certificate = shape switch
        {
            "client-auth-only" => _pki.IssueLeaf("redis.test", ["redis.test"], loopback, [TestPki.ClientAuth]),
            "cn-only" => _pki.IssueLeaf("redis.test", [], [], [TestPki.ServerAuth]),
            "ca" => _pki.IssueLeaf("redis.test", ["redis.test"], loopback, [TestPki.ServerAuth], ca: true),
            // No EKU extension at all: any usage, as browsers read it.
            _ => _pki.IssueLeaf("redis.test", ["redis.test"], loopback, null),
        };
        using var peer = TlsPeer.Echo(certificate);
        await using var host = await StartAsync(TrustCa);
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = peer.Port, tls = true, tlsServerName = "redis.test" });
        await client.ExpectAsync(refusal is null
            ? """{"success":true,"code":0,"message":"connect done"}"""
            : $$"""{"success":false,"code":8,"message":"tls failed: {{refusal}}"}""");
    }

    /// <summary>
    /// The clock is faked: each handshake waits for its deadline; the test moves time on once the server waits for it
    /// (the deadline is armed, and the peer has heard the ClientHello of the handshake under way).
    /// </summary>
    [Fact]
    public async Task A_silent_tls_peer_times_out_with_code_2_at_connect_and_at_starttls()
    {
        var hellos = System.Threading.Channels.Channel.CreateUnbounded<bool>();
        using var silent = new Peer(async (socket, stop) =>
        {
            var buffer = new byte[4096];
            if (await socket.ReceiveAsync(buffer, SocketFlags.None, stop) > 0) hellos.Writer.TryWrite(true);
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, stop) > 0) { }
        });
        var clock = new WatchedClock();
        await using var host = await Ws2sHost.StartAsync(
            TestConfig.Loopback.With(o =>
            {
                o.Limits.ConnectTimeoutSeconds = 4;
                TrustCa(o);
            }),
            clock.Serves);
        await using var client = await host.ConnectAsync();
        using var patience = new CancellationTokenSource(WsClient.Patience);
        var armed = clock.WhenArmedAsync(TimeSpan.FromSeconds(4));
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = silent.Port, tls = true, tlsServerName = "redis.test" });
        await armed;
        await hellos.Reader.ReadAsync(patience.Token);
        clock.Advance(TimeSpan.FromSeconds(4));
        await client.ExpectAsync("""{"success":false,"code":2,"message":"connect timed out after 4 s"}""");
        // The plain connect arms its deadline (4 s on); the starttls that follows has the same one (the clock stands still).
        armed = clock.WhenArmedAsync(TimeSpan.FromSeconds(4));
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = silent.Port });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
        await armed;
        await client.SendAsync(new { command = "starttls", tlsServerName = "redis.test" });
        await hellos.Reader.ReadAsync(patience.Token);
        clock.Advance(TimeSpan.FromSeconds(4));
        await client.ExpectAsync("""{"success":false,"code":2,"message":"tls handshake did not finish within 4 s"}""");
        // As after any failed handshake: the connection is gone.
        await client.SendAsync(new { command = "send", data = "x" });
        await client.ExpectAsync("""{"success":false,"code":3,"message":"illegal socket status, please connect again"}""");
    }

    [Fact]
    public async Task Starttls_upgrades_in_place_after_the_peers_plaintext_and_then_carries_plaintext_over_tls()
    {
        using var peer = TlsPeer.StartTls(_pki.Leaf);
        await using var host = await StartAsync(TrustCa);
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = peer.Port });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
        var plain = new MemoryStream();
        await client.ReadDataAsync(plain, "220 ready\r\n".Length);
        // As RFC 3207 asks of a client: the protocol's STARTTLS, wait for the go-ahead, then the handshake.
        await client.SendAsync(new { command = "send", data = "STARTTLS\r\n" });
        await client.ExpectAnswerAsync("""{"success":true,"code":0,"message":"send done"}""", plain);
        await client.ReadDataAsync(plain, "220 ready\r\n220 go ahead\r\n".Length);
        await client.SendAsync(new { command = "starttls", tlsServerName = "redis.test" });
        await client.ExpectAnswerAsync("""{"success":true,"code":0,"message":"starttls done"}""", plain);
        Assert.Equal("220 ready\r\n220 go ahead\r\n", Encoding.ASCII.GetString(plain.ToArray()));
        var secret = new MemoryStream();
        await client.SendAsync(new { command = "send", data = "EHLO secret\r\n" });
        await client.ExpectAnswerAsync("""{"success":true,"code":0,"message":"send done"}""", secret);
        await client.ReadDataAsync(secret, "250 EHLO secret\r\n".Length);
        Assert.Equal("250 EHLO secret\r\n", Encoding.ASCII.GetString(secret.ToArray()));
        await client.SendAsync(new { command = "starttls" });
        await client.ExpectAsync("""{"success":false,"code":7,"message":"bad request: the connection is TLS already"}""");
    }

    [Fact]
    public async Task Starttls_with_nothing_open_is_code_3_and_tlsServerName_without_tls_is_code_7()
    {
        await using var host = await StartAsync();
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "starttls" });
        await client.ExpectAsync("""{"success":false,"code":3,"message":"illegal socket status, please connect again"}""");
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = 9, tlsServerName = "x.test" });
        await client.ExpectAsync("""{"success":false,"code":7,"message":"bad request: tlsServerName needs \"tls\": true"}""");
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = 9, tls = true, tlsServerName = "bad\u0000name" });
        var answer = await client.ReceiveJsonAsync();
        Assert.Equal(7, (int)answer["code"]!);
    }

    [Fact]
    public async Task A_real_redis_with_tls_port_answers_set_and_get_over_tls()
    {
        await using var redis = await RedisServer.StartAsync(_pki);
        await using var host = await StartAsync(TrustCa);
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = redis.Port, tls = true, tlsServerName = "redis.test" });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
        var replies = new MemoryStream();
        await client.SendAsync(new { command = "send", data = "SET greeting tls\r\nGET greeting\r\n" });
        await client.ExpectAnswerAsync("""{"success":true,"code":0,"message":"send done"}""", replies);
        await client.ReadDataAsync(replies, "+OK\r\n$3\r\ntls\r\n".Length);
        Assert.Equal("+OK\r\n$3\r\ntls\r\n", Encoding.ASCII.GetString(replies.ToArray()));
    }
}

/// <summary>TLS peers on loopback: an echo server, and a STARTTLS server in SMTP's manner.</summary>
internal static class TlsPeer
{
    private static int _handshakes;

    public static Peer Echo(X509Certificate2 certificate, IPAddress? loopback = null) => new(async (socket, stop) =>
    {
        await using var tls = new SslStream(new NetworkStream(socket, ownsSocket: true));
        // A client that refuses the certificate ends the handshake: nothing more to do.
        try { await tls.AuthenticateAsServerAsync(certificate); }
        catch (Exception e) when (e is System.Security.Authentication.AuthenticationException or IOException) { return; }
        Interlocked.Increment(ref _handshakes);
        var buffer = new byte[64 * 1024];
        int read;
        while ((read = await tls.ReadAsync(buffer, stop)) > 0) await tls.WriteAsync(buffer.AsMemory(0, read), stop);
    }, loopback);

    /// <summary>
    /// A TLS 1.2 server that echoes the first read, then asks the client to renegotiate (a HelloRequest: TLS 1.2's way to
    /// ask for a client certificate) and says whether that worked; it echoes on if it did.
    /// </summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public static Peer Renegotiator(X509Certificate2 certificate, TaskCompletionSource<bool> renegotiated) => new(async (socket, stop) =>
    {
        await using var tls = new SslStream(new NetworkStream(socket, ownsSocket: true));
        await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
        {
            ServerCertificate = certificate,
            EnabledSslProtocols = System.Security.Authentication.SslProtocols.Tls12,
            RemoteCertificateValidationCallback = (_, _, _, _) => true, // asking is the point, not the certificate
        }, stop);
        var buffer = new byte[64 * 1024];
        var read = await tls.ReadAsync(buffer, stop);
        await tls.WriteAsync(buffer.AsMemory(0, read), stop);
        try
        {
            await tls.NegotiateClientCertificateAsync(stop);
            renegotiated.TrySetResult(true);
        }
        catch (Exception e) when (e is IOException or System.Security.Authentication.AuthenticationException or InvalidOperationException)
        {
            renegotiated.TrySetResult(false);
            return;
        }
        while ((read = await tls.ReadAsync(buffer, stop)) > 0) await tls.WriteAsync(buffer.AsMemory(0, read), stop);
    });

    /// <summary>Greets in plaintext; on <c>STARTTLS</c> says go ahead and handshakes at once; then answers each line with <c>250 LINE</c>.</summary>
    public static Peer StartTls(X509Certificate2 certificate) => new(async (socket, stop) =>
    {
        var plain = new NetworkStream(socket, ownsSocket: true);
        await plain.WriteAsync("220 ready\r\n"u8.ToArray(), stop);
        var line = await ReadLineAsync(plain, stop);
        if (line != "STARTTLS") return;
        await plain.WriteAsync("220 go ahead\r\n"u8.ToArray(), stop);
        await using var tls = new SslStream(plain);
        await tls.AuthenticateAsServerAsync(certificate);
        while (await ReadLineAsync(tls, stop) is { } request)
            await tls.WriteAsync(Encoding.ASCII.GetBytes($"250 {request}\r\n"), stop);
    });

    private static async Task<string?> ReadLineAsync(Stream stream, CancellationToken stop)
    {
        var line = new StringBuilder();
        var one = new byte[1];
        while (await stream.ReadAsync(one, stop) == 1)
        {
            if (one[0] == '\n') return line.ToString().TrimEnd('\r');
            line.Append((char)one[0]);
        }
        return null;
    }

    public static int Handshakes => Volatile.Read(ref _handshakes);
}
