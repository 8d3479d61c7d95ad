using Ws2s.AspNetCore.Configuration;
using Microsoft.Extensions.DependencyInjection;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Ws2s.Host.Tests;

/// <summary>
/// Signed access tokens (<c>auth.jwt</c>): tokens minted here with test keys (HS256, RS256, ES256)
/// admit a session and narrow where it may go; every forged, stale or misdirected token is an attack
/// that must end in 401 with words, never echoing the token.
/// </summary>
public sealed class JwtTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("ws2s-jwt-").FullName;
    private readonly byte[] _secret = Encoding.UTF8.GetBytes("a shared secret of at least 32 bytes, for HS256 tests");
    private readonly RSA _rsa = RSA.Create(2048);
    private readonly ECDsa _ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly JsonWebTokenHandler _handler = new();

    public void Dispose()
    {
        _rsa.Dispose();
        _ec.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    private string SecretFile() => Write("secret", Encoding.UTF8.GetString(_secret) + "\n");

    private string PublicKeysFile(params AsymmetricAlgorithm[] keys) =>
        Write("keys.pem", string.Join("\n", keys.Select(k => k.ExportSubjectPublicKeyInfoPem())));

    private string Write(string name, string text)
    {
        var path = Path.Combine(_directory, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static Task<Ws2sHost> StartAsync(Ws2sOptions.JwtOptions jwt, bool allowServerLocal = true) => Ws2sHost.StartAsync(
        TestConfig.Defaults.With(o =>
        {
            o.AllowConnectToServerLocal = allowServerLocal;
            o.Auth.Jwt = jwt;
        }));

    /// <summary>ws2sd with signed tokens (HS256) judged by <paramref name="clock"/>, with no clock skew, loopback allowed.</summary>
    private Task<Ws2sHost> StartOnAsync(TimeProvider clock) => Ws2sHost.StartAsync(
        TestConfig.Loopback.With(o => o.Auth.Jwt = new() { SecretFile = SecretFile(), ClockSkewSeconds = 0 }),
        services => services.AddSingleton<TimeProvider>(clock));

    /// <summary>A Wisp v2 connection that presents <paramref name="token"/> as its password (the verdict is the next packet).</summary>
    private static async Task<WsClient> PresentToWispAsync(Ws2sHost host, string token)
    {
        var client = await WsClient.ConnectAsync(new Uri(host.Url, "/wisp/"), "http://localhost:8080", "wisp-v2");
        Assert.Equal(5, (await client.ReceivePacketAsync()).Type);
        await client.SendBinaryAsync(WispClient.PasswordInfo("alice", token));
        return client;
    }

    /// <summary>A token: <c>sub</c> alice, valid for an hour, the <c>ws2s</c> claim as given.</summary>
    private string Mint(SigningCredentials credentials, object? ws2s = null, DateTime? expires = null, DateTime? notBefore = null,
        string? audience = null, string? issuer = null, IDictionary<string, object>? claims = null)
    {
        var all = new Dictionary<string, object>(claims ?? new Dictionary<string, object>());
        if (ws2s is not null) all["ws2s"] = JsonSerializer.SerializeToElement(ws2s);
        var now = DateTime.UtcNow;
        return _handler.CreateToken(new SecurityTokenDescriptor
        {
            Subject = new ClaimsIdentity([new Claim("sub", "alice")]),
            Claims = all,
            IssuedAt = (notBefore ?? now).AddSeconds(-1) < now ? (notBefore ?? now).AddSeconds(-1) : now,
            NotBefore = notBefore ?? now.AddMinutes(-1),
            Expires = expires ?? now.AddHours(1),
            Audience = audience,
            Issuer = issuer,
            SigningCredentials = credentials,
        });
    }

    private SigningCredentials Hs256 => new(new SymmetricSecurityKey(_secret), SecurityAlgorithms.HmacSha256);

    /// <summary>Attempts an upgrade with <paramref name="token"/> as a subprotocol entry: the status and the body of a refusal.</summary>
    internal static async Task<(int Status, string Body)> UpgradeAsync(Uri url, string token)
    {
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Connection.Add("Upgrade");
        request.Headers.Upgrade.Add(new ProductHeaderValue("websocket"));
        request.Headers.Add("Sec-WebSocket-Version", "13");
        request.Headers.Add("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
        request.Headers.Add("Sec-WebSocket-Protocol", "token." + token);
        request.Headers.Add("Origin", "http://localhost:8080");
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        if (response.StatusCode == HttpStatusCode.SwitchingProtocols) return (101, "");
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private static async Task<WsClient> OpenAsync(Uri url, string token) => await WsClient.ConnectAsync(url, "http://localhost:8080", "token." + token);

    [Fact]
    public async Task A_token_reaches_what_it_allows_and_nothing_else_the_server_would_allow()
    {
        using var allowed = Peer.Echo();
        using var other = Peer.Echo();
        await using var host = await StartAsync(new() { SecretFile = SecretFile() });
        var token = Mint(Hs256, new { allow = new[] { $"127.0.0.1:{allowed.Port}" } });
        await using var client = await OpenAsync(host.Url, token);
        await client.EchoThroughAsync(allowed.Port, "hello alice");
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = other.Port });
        await client.ExpectAsync($$"""{"success":false,"code":4,"message":"ws2s refuse to connect target host: 127.0.0.1, cause that's a dangerous operation (not in this session's scope)"}""");
    }

    [Fact]
    public async Task A_token_allowed_one_unix_path_reaches_no_other_and_a_wide_tcp_claim_opens_none()
    {
        var a = Path.Combine(_directory, "a.sock");
        var b = Path.Combine(_directory, "b.sock");
        using var listenA = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        using var listenB = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        listenA.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(a));
        listenA.Listen(4);
        listenB.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(b));
        listenB.Listen(4);
        await using var host = await Ws2sHost.StartAsync(
            TestConfig.Loopback.With(o =>
            {
                o.Destinations.Allow = ["unix:" + a, "unix:" + b, "0.0.0.0/0"];
                o.Auth.Jwt = new() { SecretFile = SecretFile() };
            }));
        await using (var client = await OpenAsync(host.Url, Mint(Hs256, new { allow = new[] { "unix:" + a } })))
        {
            await client.SendAsync(new { command = "connect", host = "unix:" + a });
            await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
            await client.SendAsync(new { command = "connect", host = "unix:" + b });
            var refused = await client.ReceiveJsonAsync();
            Assert.Equal(4, (int)refused["code"]!);
            Assert.Contains("scope", (string)refused["message"]!);
        }
        await using (var client = await OpenAsync(host.Url, Mint(Hs256, new { allow = new[] { "0.0.0.0/0", "::/0", "*.localhost" } })))
        {
            await client.SendAsync(new { command = "connect", host = "unix:" + b });
            Assert.Equal(4, (int)(await client.ReceiveJsonAsync())["code"]!);
        }
        listenB.Blocking = false;
        Assert.Throws<System.Net.Sockets.SocketException>(() => listenB.Accept().Dispose());
    }

    [Fact]
    public async Task A_token_cannot_open_what_the_server_refuses()
    {
        using var echo = Peer.Echo();
        await using var host = await StartAsync(new() { SecretFile = SecretFile() }, allowServerLocal: false);
        // The token allows all of loopback; the server does not allow this machine.
        await using var client = await OpenAsync(host.Url, Mint(Hs256, new { allow = new[] { "127.0.0.0/8" } }));
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = echo.Port });
        var answer = await client.ReceiveJsonAsync();
        Assert.Equal(4, (int)answer["code"]!);
        Assert.DoesNotContain("scope", (string)answer["message"]!);
    }

    public static TheoryData<string, string> Refusals => new()
    {
        { "expired", "token expired" },
        { "not yet valid", "token not yet valid" },
        { "wrong audience", "wrong audience" },
        { "wrong issuer", "wrong issuer" },
        { "another secret", "bad signature" },
        { "alg none", "unsigned token" },
        { "no exp", "token has no expiry (exp)" },
        { "garbage", "not a valid token" },
        { "bad claim", "token claim ws2s.allow[0] is not a destination rule" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task A_forged_stale_or_misdirected_token_gets_401_with_words_and_never_its_own_text_back(string attack, string words)
    {
        await using var host = await StartAsync(new() { SecretFile = SecretFile(), Issuer = "https://app.example", Audience = "ws2s", ClockSkewSeconds = 5 });
        string Valid(DateTime? expires = null, DateTime? notBefore = null, string audience = "ws2s", string issuer = "https://app.example", SigningCredentials? with = null, object? ws2s = null) =>
            Mint(with ?? Hs256, ws2s, expires, notBefore, audience, issuer);
        var token = attack switch
        {
            "expired" => Valid(expires: DateTime.UtcNow.AddMinutes(-5), notBefore: DateTime.UtcNow.AddHours(-1)),
            "not yet valid" => Valid(notBefore: DateTime.UtcNow.AddMinutes(10), expires: DateTime.UtcNow.AddHours(1)),
            "wrong audience" => Valid(audience: "another-service"),
            "wrong issuer" => Valid(issuer: "https://evil.example"),
            "another secret" => Valid(with: new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes("some other secret that is also 32 bytes long")), SecurityAlgorithms.HmacSha256)),
            "alg none" => Unsigned("""{"sub":"alice","aud":"ws2s","iss":"https://app.example","exp":4102444800,"ws2s":{"allow":["0.0.0.0/0"]}}"""),
            "no exp" => Signed("""{"sub":"alice","aud":"ws2s","iss":"https://app.example"}"""),
            "garbage" => "not.a.jwt",
            "bad claim" => Valid(ws2s: new { allow = new[] { "not a rule!" } }),
            _ => throw new ArgumentException(attack),
        };
        var (status, body) = await UpgradeAsync(host.Url, token);
        Assert.Equal(401, status);
        Assert.Equal($"ws2s: {words}\n", body);
        Assert.DoesNotContain(token, body);
    }

    private static string B64(string json) => Base64UrlEncoder.Encode(json);

    private static string Unsigned(string payload) => $"{B64("""{"alg":"none","typ":"JWT"}""")}.{B64(payload)}.";

    private string Signed(string payload)
    {
        var body = $"{B64("""{"alg":"HS256","typ":"JWT"}""")}.{B64(payload)}";
        return body + "." + Base64UrlEncoder.Encode(HMACSHA256.HashData(_secret, Encoding.ASCII.GetBytes(body)));
    }

    /// <summary>
    /// Issue 25, attack: a resume token stolen by another user of the same app (a signed token of another subject) resumes
    /// nothing; the session's own subject resumes it, with a token it got since (a new one: the identity is the subject).
    /// </summary>
    [Fact]
    public async Task A_resume_is_refused_to_another_subject_and_taken_by_the_same_subject_with_a_new_token()
    {
        await using var host = await StartAsync(new() { SecretFile = SecretFile() });
        using var echo = Peer.Echo();
        string Token(string subject, int hours) => Signed($$"""{"sub":"{{subject}}","exp":{{DateTimeOffset.UtcNow.AddHours(hours).ToUnixTimeSeconds()}}}""");
        var alice = await WsClient.ConnectAsync(new Uri(host.Url, "/?token=" + Token("alice", 1)));
        await alice.SendAsync(new { command = "connect", host = "127.0.0.1", port = echo.Port, resumable = true });
        var resume = (string)(await alice.ReceiveJsonAsync())["resume"]!;
        alice.Socket.Abort();
        await using (var mallory = await WsClient.ConnectAsync(new Uri(host.Url, "/?token=" + Token("mallory", 1))))
        {
            await mallory.SendAsync(new { command = "resume", token = resume, received = 0 });
            await mallory.ExpectAsync("""{"success":false,"code":9,"message":"resume failed: no session holds this token"}""");
        }
        await using var back = await WsClient.ConnectAsync(new Uri(host.Url, "/?token=" + Token("alice", 2)));
        await back.SendAsync(new { command = "resume", token = resume, received = 0 });
        Assert.Equal("resume done", (string)(await back.ReceiveJsonAsync())["message"]!);
    }

    [Fact]
    public async Task An_hs256_token_signed_with_the_servers_rsa_public_key_is_refused()
    {
        // Algorithm confusion: the attacker knows the public key and uses its PEM as an HMAC secret.
        var pem = PublicKeysFile(_rsa);
        await using var host = await StartAsync(new() { PublicKeysFile = pem });
        var publicPem = File.ReadAllText(pem);
        var body = $"{B64("""{"alg":"HS256","typ":"JWT"}""")}.{B64($$"""{"sub":"mallory","exp":{{DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds()}}}""")}";
        var forged = body + "." + Base64UrlEncoder.Encode(HMACSHA256.HashData(Encoding.ASCII.GetBytes(publicPem), Encoding.ASCII.GetBytes(body)));
        var (status, text) = await UpgradeAsync(host.Url, forged);
        Assert.Equal(401, status);
        Assert.DoesNotContain(forged, text);
        // The genuine RS256 token is accepted.
        var genuine = Mint(new SigningCredentials(new RsaSecurityKey(_rsa), SecurityAlgorithms.RsaSha256));
        Assert.Equal(101, (await UpgradeAsync(host.Url, genuine)).Status);
    }

    [Fact]
    public async Task Rs256_and_es256_tokens_verify_with_the_public_keys_from_pem_and_from_jwks()
    {
        var rsa = new SigningCredentials(new RsaSecurityKey(_rsa), SecurityAlgorithms.RsaSha256);
        var ec = new SigningCredentials(new ECDsaSecurityKey(_ec), SecurityAlgorithms.EcdsaSha256);
        await using (var host = await StartAsync(new() { PublicKeysFile = PublicKeysFile(_rsa, _ec) }))
        {
            Assert.Equal(101, (await UpgradeAsync(host.Url, Mint(rsa))).Status);
            Assert.Equal(101, (await UpgradeAsync(host.Url, Mint(ec))).Status);
        }
        var jwks = new { keys = new[]
        {
            JsonWebKeyConverter.ConvertFromRSASecurityKey(new RsaSecurityKey(_rsa.ExportParameters(false))),
            JsonWebKeyConverter.ConvertFromECDsaSecurityKey(new ECDsaSecurityKey(ECDsa.Create(_ec.ExportParameters(false)))),
        }.Select(k => new { k.Kty, k.N, k.E, k.Crv, k.X, k.Y }) };
        var jwksFile = Write("jwks.json", JsonSerializer.Serialize(jwks, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull }));
        await using (var host = await StartAsync(new() { JwksFile = jwksFile }))
        {
            Assert.Equal(101, (await UpgradeAsync(host.Url, Mint(rsa))).Status);
            Assert.Equal(101, (await UpgradeAsync(host.Url, Mint(ec))).Status);
        }
    }

    [Fact]
    public async Task A_rotated_key_file_is_picked_up_without_a_restart()
    {
        var file = PublicKeysFile(_rsa);
        await using var host = await StartAsync(new() { PublicKeysFile = file });
        var old = Mint(new SigningCredentials(new RsaSecurityKey(_rsa), SecurityAlgorithms.RsaSha256));
        Assert.Equal(101, (await UpgradeAsync(host.Url, old)).Status);
        using var next = RSA.Create(2048);
        File.WriteAllText(file, next.ExportSubjectPublicKeyInfoPem());
        File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddSeconds(5)); // a new stamp even on a coarse clock
        Assert.Equal((401, "ws2s: bad signature\n"), await UpgradeAsync(host.Url, old));
        Assert.Equal(101, (await UpgradeAsync(host.Url, Mint(new SigningCredentials(new RsaSecurityKey(next), SecurityAlgorithms.RsaSha256)))).Status);
    }

    [Fact]
    public async Task MaxSessions_bounds_the_subjects_concurrent_sessions_with_503()
    {
        await using var host = await StartAsync(new() { SecretFile = SecretFile() });
        var token = Mint(Hs256, new { maxSessions = 1 });
        await using var first = await OpenAsync(host.Url, token);
        var (status, body) = await UpgradeAsync(host.Url, token);
        Assert.Equal(503, status);
        Assert.Equal("ws2s: the token's subject has 1 session open already (its maxSessions)\n", body);
    }

    [Fact]
    public async Task A_token_with_ssh_false_gets_code_4_for_any_tunnel()
    {
        await using var host = await StartAsync(new() { SecretFile = SecretFile() });
        await using var client = await OpenAsync(host.Url, Mint(Hs256, new { ssh = false }));
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = 22, ssh_host = "127.0.0.1", ssh_username = "u", ssh_password = "p" });
        await client.ExpectAsync("""{"success":false,"code":4,"message":"ws2s refuse to connect target host: 127.0.0.1, cause that's a dangerous operation (SSH tunnels are not in this session's scope)"}""");
    }

    [Fact]
    public async Task The_websockify_endpoint_takes_a_token_whose_host_and_port_claims_name_the_target()
    {
        using var echo = Peer.Echo();
        await using var host = await StartAsync(new() { SecretFile = SecretFile() });
        var token = Mint(Hs256, claims: new Dictionary<string, object> { ["host"] = "127.0.0.1", ["port"] = echo.Port });
        await using var client = await WsClient.ConnectAsync(new Uri(host.Url, $"/websockify?token={token}"), "http://localhost:8080", "binary");
        await client.SendBinaryAsync("vnc bytes"u8.ToArray());
        Assert.Equal("vnc bytes", (await client.ReceiveAsync()).Text);
        var expired = Mint(Hs256, expires: DateTime.UtcNow.AddMinutes(-5), notBefore: DateTime.UtcNow.AddHours(-1),
            claims: new Dictionary<string, object> { ["host"] = "127.0.0.1", ["port"] = echo.Port });
        using var http = new HttpClient();
        var (status, body) = await UpgradeAsync(new Uri(host.Url, $"/websockify?token={expired}"), "unused");
        Assert.Equal((401, "ws2s: token expired\n"), (status, body));
    }

    /// <summary>
    /// Attack (issue 20, 4): the secret file rewritten with a new secret but its old modification time kept
    /// the old key valid and refused the new one. Changes are known by content, not by time stamps.
    /// </summary>
    [Fact]
    public async Task A_secret_rewritten_with_the_same_time_stamp_is_still_taken_up()
    {
        var file = SecretFile();
        var stamp = File.GetLastWriteTimeUtc(file);
        await using var host = await StartAsync(new() { SecretFile = file });
        var old = Mint(Hs256);
        Assert.Equal(101, (await UpgradeAsync(host.Url, old)).Status);
        var rotated = Encoding.UTF8.GetBytes("the rotated shared secret, also at least 32 bytes");
        File.WriteAllText(file, Encoding.UTF8.GetString(rotated) + "\n");
        File.SetLastWriteTimeUtc(file, stamp); // same size class, same stamp: only the content says it changed
        Assert.Equal((401, "ws2s: bad signature\n"), await UpgradeAsync(host.Url, old));
        Assert.Equal(101, (await UpgradeAsync(host.Url, Mint(new SigningCredentials(new SymmetricSecurityKey(rotated), SecurityAlgorithms.HmacSha256)))).Status);
    }

    /// <summary>
    /// Attack (issue 20, 9): with only <c>auth.jwt</c>, a valid token without an Origin header (a non-browser
    /// client) got 403 "needs a token": the check looked at fixed tokens only. A valid signed token suffices.
    /// </summary>
    [Fact]
    public async Task A_valid_signed_token_admits_a_client_without_an_origin_header()
    {
        await using var host = await StartAsync(new() { SecretFile = SecretFile() });
        await using var client = await WsClient.ConnectAsync(host.Url, origin: null, "ws2s", "token." + Mint(Hs256));
        await client.SendAsync(new { command = "ping" });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"ping done"}""");
        // Without a token, still refused.
        Assert.Equal(401, (await UpgradeAsync(host.Url, "not.a.jwt")).Status);
    }

    /// <summary>
    /// Attack (issue 20, 11): <c>maxSessions</c> in a token without <c>sub</c> (or with an empty one) was not
    /// enforced (4 sessions with a limit of 1). Such a token is refused: the limit would have nobody to count.
    /// </summary>
    [Theory]
    [InlineData(null)]
    [InlineData("")]
    public async Task A_token_with_maxSessions_but_no_subject_is_refused(string? subject)
    {
        await using var host = await StartAsync(new() { SecretFile = SecretFile() });
        var payload = new Dictionary<string, object> { ["exp"] = DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds(), ["ws2s"] = new { maxSessions = 1 } };
        if (subject is not null) payload["sub"] = subject;
        var token = Signed(JsonSerializer.Serialize(payload));
        Assert.Equal((401, "ws2s: token claim ws2s.maxSessions needs a subject (sub) to count sessions by\n"), await UpgradeAsync(host.Url, token));
    }

    /// <summary>Attack (issue 20, 11): a token with a <c>crit</c> header the server does not understand was accepted; RFC 7515 §4.1.11 says reject.</summary>
    [Fact]
    public async Task A_token_with_a_critical_header_the_server_does_not_understand_is_refused()
    {
        await using var host = await StartAsync(new() { SecretFile = SecretFile() });
        var body = $"{B64("""{"alg":"HS256","typ":"JWT","crit":["exp-policy"],"exp-policy":"ignore"}""")}.{B64($$"""{"sub":"alice","exp":{{DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds()}}}""")}";
        var token = body + "." + Base64UrlEncoder.Encode(HMACSHA256.HashData(_secret, Encoding.ASCII.GetBytes(body)));
        Assert.Equal((401, "ws2s: token has critical header parameters the server does not understand (crit)\n"), await UpgradeAsync(host.Url, token));
    }

    /// <summary>
    /// A token's lifetime is judged by the server's clock (the injected <see cref="TimeProvider"/>), like every other
    /// time decision: with the clock moved past <c>exp</c>, the token is refused at the upgrade; before, admitted.
    /// </summary>
    [Fact]
    public async Task A_tokens_lifetime_is_judged_by_the_servers_clock()
    {
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = await StartOnAsync(clock);
        var token = Mint(Hs256, expires: DateTime.UtcNow.AddMinutes(10));
        Assert.Equal(101, (await UpgradeAsync(host.Url, token)).Status);
        clock.Advance(TimeSpan.FromMinutes(11));
        var (status, body) = await UpgradeAsync(host.Url, token);
        Assert.Equal(401, status);
        Assert.Contains("expired", body);
    }

    /// <summary>
    /// Attack (issue 20, 11): a session could still <c>connect</c> after its token expired. New connects after
    /// <c>exp</c> are refused in words (code 4); the connection already open goes on. The clock is faked.
    /// </summary>
    [Fact]
    public async Task After_the_token_expires_new_connects_are_refused_and_the_open_connection_goes_on()
    {
        using var echo = Peer.Echo();
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = await StartOnAsync(clock);
        var expires = DateTime.UtcNow.AddMinutes(10);
        await using var client = await OpenAsync(host.Url, Mint(Hs256, expires: expires));
        await client.EchoThroughAsync(echo.Port, "before expiry");
        clock.Advance(TimeSpan.FromMinutes(11));
        // The open connection still relays.
        await client.SendAsync(new { command = "send", data = "still open" });
        var echoed = new MemoryStream();
        await client.ExpectAnswerAsync("""{"success":true,"code":0,"message":"send done"}""", echoed);
        await client.ReadDataAsync(echoed, "still open".Length);
        Assert.Equal("still open", Encoding.UTF8.GetString(echoed.ToArray()));
        // A new connect is refused in words.
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = echo.Port });
        var answer = await client.ReceiveJsonAsync();
        Assert.Equal(4, (int)answer["code"]!);
        Assert.Contains("the session's token expired at", (string)answer["message"]!);
    }

    /// <summary>Attack: a signed token's scope narrows every Wisp stream as it narrows a ws2s connect (the same session core).</summary>
    [Fact]
    public async Task A_tokens_scope_narrows_every_Wisp_stream_and_the_rest_are_refused_0x48()
    {
        using var allowed = Peer.Echo();
        using var other = Peer.Echo();
        await using var host = await StartAsync(new() { SecretFile = SecretFile() });
        var token = Mint(Hs256, new { allow = new[] { $"127.0.0.1:{allowed.Port}" } });
        await using var client = await OpenAsync(new Uri(host.Url, "/wisp/"), token);
        Assert.Equal(3, (await client.ReceivePacketAsync()).Type); // Wisp v1 (a token entry alone asks for no v2)
        await client.SendBinaryAsync(WispClient.Connect(1, allowed.Port, "127.0.0.1"));
        await client.SendBinaryAsync(WispClient.Connect(2, other.Port, "127.0.0.1"));
        var refused = await client.ReceiveOnAsync(2, 4);
        Assert.Equal(0x48, refused.Reason);
        await client.SendBinaryAsync(WispClient.Data(1, "alice"u8));
        Assert.Equal("alice", Encoding.UTF8.GetString((await client.ReceiveOnAsync(1, 2)).Payload));
    }

    /// <summary>Attack: a signed token presented in the connection (Wisp's password extension) narrows it as one at the upgrade does.</summary>
    [Fact]
    public async Task A_signed_token_as_the_Wisp_password_narrows_every_stream()
    {
        using var allowed = Peer.Echo();
        using var other = Peer.Echo();
        await using var host = await StartAsync(new() { SecretFile = SecretFile() });
        await using var client = await PresentToWispAsync(host, Mint(Hs256, new { allow = new[] { $"127.0.0.1:{allowed.Port}" } }));
        Assert.Equal(3, (await client.ReceivePacketAsync()).Type);
        await client.SendBinaryAsync(WispClient.Connect(1, allowed.Port, "127.0.0.1"));
        await client.SendBinaryAsync(WispClient.Connect(2, other.Port, "127.0.0.1"));
        Assert.Equal(0x48, (await client.ReceiveOnAsync(2, 4)).Reason);
        await client.SendBinaryAsync(WispClient.Data(1, "alice"u8));
        Assert.Equal("alice", Encoding.UTF8.GetString((await client.ReceiveOnAsync(1, 2)).Payload));
    }

    /// <summary>
    /// Attack (review): a token's <c>maxSessions</c> counts connections that present it as the Wisp password, and a connection
    /// that ends before its token is judged does not keep the subject's slot (it did: the subject was locked out until a restart).
    /// </summary>
    [Fact]
    public async Task A_Wisp_password_token_counts_against_its_subjects_sessions_and_gives_the_slot_back()
    {
        await using var host = await StartAsync(new() { SecretFile = SecretFile() });
        var token = Mint(Hs256, new { maxSessions = 1 });
        Task<WsClient> PresentAsync() => PresentToWispAsync(host, token);
        // Many that go away at once, before or while their token is judged (rounds of them: the race is the attack).
        for (var round = 0; round < 5; round++)
            await Task.WhenAll(Enumerable.Range(0, 30).Select(async _ =>
            {
                var client = await PresentAsync();
                client.Socket.Abort();
                client.Socket.Dispose();
            }));
        // The slot is free once they are gone (the server may still be ending them: wait for that, not a time).
        WsClient first = null!;
        for (var attempt = 0; ; attempt++)
        {
            first = await PresentAsync();
            var verdict = await first.ReceivePacketAsync();
            if (verdict.Type == 3) break;
            await first.DisposeAsync();
            Assert.True(attempt < 200, "the subject's slot was never given back");
        }
        await using (first)
        {
            await using var second = await PresentAsync();
            var refused = await second.ReceivePacketAsync();
            Assert.Equal((4, 0u, 0xc0), (refused.Type, refused.Stream, (int)refused.Reason));
            await second.ExpectCloseAsync(1008, "authentication failed: the token's subject has 1 session open already (its maxSessions)");
        }
    }

    /// <summary>
    /// Opens Wisp stream 1 and echoes through it, lets the 10-minute token expire (11 minutes on the fake clock), and checks
    /// that stream 2 is refused 0x48.
    /// </summary>
    private static async Task OpenThenExpireAsync(WsClient client, int echoPort, Microsoft.Extensions.Time.Testing.FakeTimeProvider clock)
    {
        await client.SendBinaryAsync(WispClient.Connect(1, echoPort, "127.0.0.1"));
        await client.SendBinaryAsync(WispClient.Data(1, "before"u8));
        Assert.Equal("before", Encoding.UTF8.GetString((await client.ReceiveOnAsync(1, 2)).Payload));
        clock.Advance(TimeSpan.FromMinutes(11));
        await client.SendBinaryAsync(WispClient.Connect(2, echoPort, "127.0.0.1"));
        Assert.Equal(0x48, (await client.ReceiveOnAsync(2, 4)).Reason);
    }

    /// <summary>A token presented as the Wisp password expires as one at the upgrade does: no new stream after <c>exp</c>. The clock is faked.</summary>
    [Fact]
    public async Task After_a_Wisp_password_token_expires_new_streams_are_refused()
    {
        using var echo = Peer.Echo();
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = await StartOnAsync(clock);
        await using var client = await PresentToWispAsync(host, Mint(Hs256, expires: DateTime.UtcNow.AddMinutes(10)));
        Assert.Equal(3, (await client.ReceivePacketAsync()).Type);
        await OpenThenExpireAsync(client, echo.Port, clock);
    }

    /// <summary>After the token expires a Wisp connection opens no new stream (0x48); the open ones go on. The clock is faked.</summary>
    [Fact]
    public async Task After_the_token_expires_new_Wisp_streams_are_refused_and_the_open_ones_go_on()
    {
        using var echo = Peer.Echo();
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = await StartOnAsync(clock);
        await using var client = await WsClient.ConnectAsync(new Uri(host.Url, "/wisp/"), "http://localhost:8080", "token." + Mint(Hs256, expires: DateTime.UtcNow.AddMinutes(10)), "wisp-v2");
        Assert.Equal("wisp-v2", client.Socket.SubProtocol); // v2 asked for beside the token
        Assert.Equal(5, (await client.ReceivePacketAsync()).Type);
        Assert.Equal(3, (await client.ReceivePacketAsync()).Type);
        await OpenThenExpireAsync(client, echo.Port, clock);
        await client.SendBinaryAsync(WispClient.Data(1, "after"u8));
        Assert.Equal("after", Encoding.UTF8.GetString((await client.ReceiveOnAsync(1, 2)).Payload));
    }
}

/// <summary>The README's token minter, run as written in Node, with ws2s.js presenting the token.</summary>
public sealed class JwtReadmeTests
{
    [SkippableFact]
    public async Task The_readmes_node_minter_makes_tokens_ws2s_accepts_and_their_scope_holds()
    {
        Requirements.Need("/usr/bin/node", "nodejs");
        var readme = await File.ReadAllTextAsync(Path.Combine(Repository.Root, "README.md"));
        var section = readme[readme.IndexOf("## Per-user access from your web app", StringComparison.Ordinal)..];
        var start = section.IndexOf("```js\n", StringComparison.Ordinal) + 6;
        var minter = section[start..section.IndexOf("// in the page", start, StringComparison.Ordinal)];
        var secret = Path.GetTempFileName();
        await File.WriteAllTextAsync(secret, "a secret of at least thirty-two bytes for the README\n");
        using var echo = Peer.Echo();
        await using var host = await Ws2sHost.StartAsync(
            TestConfig.Loopback.With(o =>
            {
                o.Origins = ["*"];
                o.Auth.Jwt = new() { SecretFile = secret, Audience = "ws2s" };
            }));
        var client = Path.Combine(Repository.Root, "clients", "ws2s-js", "ws2s.js");
        var script = $$"""
            import { WS2S } from "{{client}}";
            {{minter}}
            const token = ws2sToken({ id: "alice" }, "a secret of at least thirty-two bytes for the README");
            for (const options of [{ token }, {}]) {
              try {
                await new WS2S(process.env.WS2S_URL, options).connect({ host: "127.0.0.1", port: Number(process.env.ECHO_PORT) });
                console.log("connected");
              } catch (e) { console.log(e.code ? `code ${e.code}: ${e.message}` : `refused: ${e.message}`); }
            }
            process.exit(0);
            """;
        var node = await Command.RunAsync("node", ["--experimental-websocket", "--input-type=module", "-e", script],
            environment: new Dictionary<string, string?> { ["WS2S_URL"] = host.Url.ToString(), ["ECHO_PORT"] = echo.Port.ToString() });
        var lines = node.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        // With the token: admitted, and its scope (redis-alice.internal:6379 only) refuses the echo peer.
        // Without: the upgrade itself is refused.
        Assert.True(lines.Length == 2, node.Printed);
        Assert.Equal("code 4: ws2s refuse to connect target host: 127.0.0.1, cause that's a dangerous operation (not in this session's scope)", lines[0]);
        Assert.StartsWith("refused: ", lines[1]);
    }

}
