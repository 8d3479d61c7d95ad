using System.Security.Cryptography;
using System.Text;

namespace Ws2s.AspNetCore.Admission;

/// <summary>
/// The configured access tokens, kept only as SHA-256 digests and compared in constant time
/// (every token is compared, equal lengths), so neither timing nor logs reveal them.
/// </summary>
internal sealed class TokenCheck
{
    /// <summary>The Sec-WebSocket-Protocol entry that carries a token: <c>token.&lt;TOKEN&gt;</c> (browsers cannot set headers).</summary>
    public const string ProtocolPrefix = "token.";

    private readonly List<byte[]> _digests;

    public TokenCheck(IEnumerable<string> tokens) =>
        _digests = tokens.Select(t => t.Length > 0 ? Digest(t) : throw new ArgumentException("an empty token")).ToList();

    /// <summary>The tokens the configuration gives: <c>tokens</c> and the lines of <c>tokensFile</c>.</summary>
    public static IEnumerable<string> Configured(Configuration.Ws2sOptions options) =>
        options.TokensFile is { } file ? options.Tokens.Concat(ReadFile(file)) : options.Tokens;

    /// <summary>The tokens in a tokens file: one per line, blank lines and <c>#</c> comments ignored.</summary>
    public static IEnumerable<string> ReadFile(string path) =>
        File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#'));

    public bool Required => _digests.Count > 0;

    public int Count => _digests.Count;

    public bool Accepts(string? presented)
    {
        if (presented is null) return false;
        var digest = Digest(presented);
        var match = false;
        foreach (var known in _digests) match |= CryptographicOperations.FixedTimeEquals(known, digest);
        return match;
    }

    private static byte[] Digest(string token) => SHA256.HashData(Encoding.UTF8.GetBytes(token));
}
