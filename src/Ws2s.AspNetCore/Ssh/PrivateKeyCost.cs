using System.Buffers.Binary;
using System.Text;
using System.Text.RegularExpressions;
using Org.BouncyCastle.Asn1;
using Org.BouncyCastle.Asn1.Pkcs;

namespace Ws2s.AspNetCore.Ssh;

/// <summary>
/// What decrypting a client's private key would cost, read from the key's header before anything is
/// decrypted. An encrypted key names its own key-derivation work (OpenSSH: bcrypt rounds; PKCS#8:
/// PBKDF2 iterations), so a hostile key could ask for hours of CPU. Costs are counted in bcrypt
/// rounds; PBKDF2 iterations count 10,000 to a round (about the same CPU time).
/// </summary>
internal static partial class PrivateKeyCost
{
    public const int Pbkdf2IterationsPerRound = 10_000;

    [GeneratedRegex(@"-----BEGIN (?<name>[A-Z0-9 ]+)-----(?<body>[A-Za-z0-9+/=\s:,\-]*?)-----END \k<name>-----", RegexOptions.ExplicitCapture)]
    private static partial Regex Pem();

    /// <summary>
    /// Why this key is refused without trying it (too costly, or a key derivation ws2s does not bound),
    /// or null when it may be decrypted. Keys that are not encrypted, or that the SSH library will
    /// reject anyway as unreadable, are not this check's business.
    /// </summary>
    public static string? Problem(string key, int maxRounds)
    {
        var pem = Pem().Match(key);
        if (!pem.Success) return null;
        byte[] der;
        try
        {
            // Legacy PEM headers (Proc-Type, DEK-Info: one MD5 pass, no cost to bound) are the lines with a colon.
            var lines = pem.Groups["body"].Value.Split('\n').Where(line => !line.Contains(':')).Select(line => line.Trim());
            der = Convert.FromBase64String(string.Concat(lines));
        }
        catch (FormatException)
        {
            return null;
        }
        var rounds = pem.Groups["name"].Value switch
        {
            "OPENSSH PRIVATE KEY" => OpenSshRounds(der),
            "ENCRYPTED PRIVATE KEY" => Pkcs8Rounds(der),
            _ => 0,
        };
        return rounds switch
        {
            null => "the private key's encryption is not one ws2s can bound (use an OpenSSH key with bcrypt, or PKCS#8 with PBKDF2)",
            var r when r > maxRounds => $"the private key asks for {r} key-derivation rounds; this server allows at most {maxRounds} (ssh.maxKdfRounds)",
            _ => null,
        };
    }

    /// <summary>openssh-key-v1: magic, cipher name, KDF name, KDF options (bcrypt: salt, uint32 rounds). 0 when unencrypted; null when unreadable.</summary>
    private static long? OpenSshRounds(ReadOnlySpan<byte> key)
    {
        var magic = "openssh-key-v1\0"u8;
        if (!key.StartsWith(magic)) return 0;
        var rest = key[magic.Length..];
        if (!NextString(ref rest, out _) || !NextString(ref rest, out var kdf) || !NextString(ref rest, out var options)) return 0;
        if (kdf.SequenceEqual("none"u8)) return 0;
        if (!kdf.SequenceEqual("bcrypt"u8)) return null;
        if (!NextString(ref options, out _) || options.Length < 4) return 0;
        return BinaryPrimitives.ReadUInt32BigEndian(options);
    }

    private static bool NextString(ref ReadOnlySpan<byte> data, out ReadOnlySpan<byte> value)
    {
        value = default;
        if (data.Length < 4) return false;
        var length = BinaryPrimitives.ReadUInt32BigEndian(data);
        if (length > data.Length - 4) return false;
        value = data.Slice(4, (int)length);
        data = data[(4 + (int)length)..];
        return true;
    }

    /// <summary>PKCS#8 EncryptedPrivateKeyInfo: PBES2 with PBKDF2, or PBES1; the iterations in rounds. Null for other schemes (scrypt…).</summary>
    private static long? Pkcs8Rounds(byte[] der)
    {
        try
        {
            var algorithm = EncryptedPrivateKeyInfo.GetInstance(Asn1Object.FromByteArray(der)).EncryptionAlgorithm;
            long iterations;
            if (algorithm.Algorithm.Equals(PkcsObjectIdentifiers.IdPbeS2))
            {
                var kdf = PbeS2Parameters.GetInstance(algorithm.Parameters).KeyDerivationFunc;
                if (!kdf.Algorithm.Equals(PkcsObjectIdentifiers.IdPbkdf2)) return null;
                iterations = Pbkdf2Params.GetInstance(kdf.Parameters).IterationCount.LongValue;
            }
            else if (algorithm.Algorithm.On(new DerObjectIdentifier(PkcsObjectIdentifiers.Pkcs12PbeIds)))
                iterations = Pkcs12PbeParams.GetInstance(algorithm.Parameters).Iterations.LongValue;
            else
                iterations = PbeParameter.GetInstance(algorithm.Parameters).IterationCountObject.LongValueExact;
            return (iterations + Pbkdf2IterationsPerRound - 1) / Pbkdf2IterationsPerRound;
        }
        catch (Exception e) when (e is ArgumentException or InvalidCastException or IOException or ArithmeticException or InvalidOperationException)
        {
            return null;
        }
    }
}
