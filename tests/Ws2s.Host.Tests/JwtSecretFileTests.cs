using System.Net;
using System.Net.Http.Headers;
using System.Security.Claims;
using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Ws2s.Host.Configuration;

namespace Ws2s.Host.Tests;

/// <summary>
/// <c>auth.jwt.secretFile</c> as issuers really read it: a file ending in a newline (as editors and
/// <c>echo</c> write it) is signed with by one app as its trimmed text, by another (Node's
/// <c>readFileSync</c>) as its exact bytes. Both are the same secret and both are admitted; another
/// secret is not, and the 32-byte minimum is counted on the trimmed secret.
/// </summary>
public sealed class JwtSecretFileTests : IDisposable
{
    private const string Secret = "the HS256 secret of this test, well over 32 bytes";
    private readonly string _directory = Directory.CreateTempSubdirectory("ws2s-jwt-secret-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string WriteSecretFile(string content)
    {
        var path = Path.Combine(_directory, "jwt.secret");
        File.WriteAllText(path, content);
        return path;
    }

    private static TestConfig Config(string secretFile) => TestConfig.Loopback.With(o => o.Auth.Jwt = new() { SecretFile = secretFile });

    private static string Mint(byte[] key) => new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
    {
        Subject = new ClaimsIdentity([new Claim("sub", "alice")]),
        Expires = DateTime.UtcNow.AddHours(1),
        SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(key), SecurityAlgorithms.HmacSha256),
    });

    public static TheoryData<string> LineEnds => new() { "\n", "\r\n", "\n\n" };

    [Theory]
    [MemberData(nameof(LineEnds))]
    public async Task A_token_signed_with_the_files_exact_bytes_and_one_signed_with_the_trimmed_secret_are_both_admitted(string lineEnd)
    {
        var file = WriteSecretFile(Secret + lineEnd);
        await using var host = await Ws2sHost.StartAsync(Config(file));

        // Node: createHmac("sha256", fs.readFileSync(file)) — the newline is part of the key.
        Assert.Equal((101, ""), await JwtTests.UpgradeAsync(host.Url, Mint(File.ReadAllBytes(file))));
        // An issuer that trims (or holds the secret without the file's line end).
        Assert.Equal((101, ""), await JwtTests.UpgradeAsync(host.Url, Mint(Encoding.UTF8.GetBytes(Secret))));
        // Anything else is another secret.
        Assert.Equal((401, "ws2s: bad signature\n"), await JwtTests.UpgradeAsync(host.Url, Mint(Encoding.UTF8.GetBytes(Secret + " "))));
        Assert.Equal((401, "ws2s: bad signature\n"), await JwtTests.UpgradeAsync(host.Url, Mint(Encoding.UTF8.GetBytes("another secret that is also well over 32 bytes"))));
    }

    [Fact]
    public async Task A_file_without_a_line_end_is_one_secret_and_another_secret_is_refused()
    {
        var file = WriteSecretFile(Secret);
        await using var host = await Ws2sHost.StartAsync(Config(file));
        Assert.Equal((101, ""), await JwtTests.UpgradeAsync(host.Url, Mint(Encoding.UTF8.GetBytes(Secret))));
        Assert.Equal((401, "ws2s: bad signature\n"), await JwtTests.UpgradeAsync(host.Url, Mint(Encoding.UTF8.GetBytes(Secret + "\n"))));
    }

    [Fact]
    public async Task A_secret_under_32_bytes_once_trimmed_is_refused_at_start_however_much_white_space_pads_the_file()
    {
        // 31 bytes of secret, and a file over 32 bytes long: the white space is no part of the secret's strength.
        var file = WriteSecretFile(new string('s', 31) + "\n\n\n\n\n    \n");
        var refused = await Assert.ThrowsAsync<ConfigException>(() => Ws2sHost.StartAsync(Config(file)));
        Assert.Contains("auth.jwt.secretFile", refused.Message);
        Assert.Contains("at least 32 bytes", refused.Message);
    }
}
