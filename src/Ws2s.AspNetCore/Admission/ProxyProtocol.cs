using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Connections;

namespace Ws2s.AspNetCore.Admission;

/// <summary>
/// The PROXY protocol (HAProxy's, versions 1 and 2) on connections from trusted proxies: the header
/// a load balancer sends before the client's bytes names the client, and Kestrel's connection takes
/// that address as its remote end (so limits, logs and SSH see the client, not the proxy). The header
/// is optional (health checks come without one); from any remote end not trusted it is never read, and
/// the request it begins is refused as bad HTTP.
/// </summary>
internal sealed class ProxyProtocol(TrustedProxies trusted, ILogger<ProxyProtocol> log)
{
    private static ReadOnlySpan<byte> V2Signature => [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];
    private static ReadOnlySpan<byte> V1Signature => "PROXY "u8;

    /// <summary>Version 1's longest line (spec §2.1), and what version 2's addresses and TLVs may take here.</summary>
    private const int V1MaxLength = 107, V2MaxLength = 16 + 2048;

    private enum Outcome { NoHeader, NeedMore, Header, Invalid }

    /// <summary>The connection middleware (Kestrel's <c>ListenOptions.Use</c>), before TLS.</summary>
    public ConnectionDelegate Wrap(ConnectionDelegate next) => async connection =>
    {
        // Every key downstream (trusted proxies, quotas, logs) sees an IPv4 client as IPv4, whichever listener it reached.
        if (connection.RemoteEndPoint is IPEndPoint mapped && mapped.Address.IsIPv4MappedToIPv6) connection.RemoteEndPoint = ClientAddress.Normal(mapped);
        if (connection.RemoteEndPoint is IPEndPoint remote && trusted.Trusts(remote.Address) && !await ReadHeaderAsync(connection))
        {
            log.LogWarning("closed a connection from trusted proxy {Proxy}: its PROXY protocol header is malformed", remote);
            connection.Abort();
            return;
        }
        await next(connection);
    };

    /// <summary>Takes a PROXY header off the connection if one begins it; false if one begins it but is malformed.</summary>
    private static async Task<bool> ReadHeaderAsync(ConnectionContext connection)
    {
        var input = connection.Transport.Input;
        try
        {
            while (true)
            {
                var result = await input.ReadAsync(connection.ConnectionClosed);
                var buffer = result.Buffer;
                var outcome = Parse(buffer, out var length, out var client);
                if (outcome == Outcome.NeedMore && !result.IsCompleted)
                {
                    input.AdvanceTo(buffer.Start, buffer.End);
                    continue;
                }
                if (outcome == Outcome.Header)
                {
                    input.AdvanceTo(buffer.GetPosition(length));
                    if (client is not null) connection.RemoteEndPoint = ClientAddress.Normal(client);
                    return true;
                }
                input.AdvanceTo(buffer.Start); // not a header: the bytes are the request's
                return outcome == Outcome.NoHeader;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ConnectionResetException or IOException)
        {
            return false;
        }
    }

    /// <summary>Reads a header at the start of <paramref name="buffer"/>: its length and the client it names (null for LOCAL/UNKNOWN).</summary>
    private static Outcome Parse(ReadOnlySequence<byte> buffer, out int length, out IPEndPoint? client)
    {
        length = 0;
        client = null;
        Span<byte> head = stackalloc byte[(int)Math.Min(buffer.Length, V2MaxLength)];
        buffer.Slice(0, head.Length).CopyTo(head);
        if (Begins(head, V2Signature) is var v2 && v2 != Outcome.NoHeader)
            return v2 == Outcome.NeedMore || head.Length < 16 ? Outcome.NeedMore : ParseV2(head, out length, out client);
        if (Begins(head, V1Signature) is var v1 && v1 != Outcome.NoHeader)
            return v1 == Outcome.NeedMore ? Outcome.NeedMore : ParseV1(head, out length, out client);
        return Outcome.NoHeader;
    }

    /// <summary>Header (matches), NeedMore (matches so far), or NoHeader.</summary>
    private static Outcome Begins(ReadOnlySpan<byte> head, ReadOnlySpan<byte> signature)
    {
        var n = Math.Min(head.Length, signature.Length);
        if (!head[..n].SequenceEqual(signature[..n])) return Outcome.NoHeader;
        return n < signature.Length ? Outcome.NeedMore : Outcome.Header;
    }

    private static Outcome ParseV2(ReadOnlySpan<byte> head, out int length, out IPEndPoint? client)
    {
        client = null;
        length = 16 + BinaryPrimitives.ReadUInt16BigEndian(head[14..]);
        if (head[12] >> 4 != 2 || length > V2MaxLength) return Outcome.Invalid;
        if (head.Length < length) return Outcome.NeedMore;
        var command = head[12] & 0x0F;
        if (command == 0) return Outcome.Header; // LOCAL: the proxy's own connection (a health check)
        if (command != 1) return Outcome.Invalid;
        var addresses = head[16..length];
        switch (head[13])
        {
            case 0x11 when addresses.Length >= 12: // TCP over IPv4
                client = new IPEndPoint(new IPAddress(addresses[..4]), BinaryPrimitives.ReadUInt16BigEndian(addresses[8..]));
                return Outcome.Header;
            case 0x21 when addresses.Length >= 36: // TCP over IPv6
                client = new IPEndPoint(new IPAddress(addresses[..16]), BinaryPrimitives.ReadUInt16BigEndian(addresses[32..]));
                return Outcome.Header;
            case 0x00: // UNSPEC: keep the connection's own address
                return Outcome.Header;
            default:
                return Outcome.Invalid;
        }
    }

    /// <summary><c>PROXY TCP4|TCP6 src dst sport dport\r\n</c> or <c>PROXY UNKNOWN…\r\n</c>.</summary>
    private static Outcome ParseV1(ReadOnlySpan<byte> head, out int length, out IPEndPoint? client)
    {
        client = null;
        length = 0;
        var end = head[..Math.Min(head.Length, V1MaxLength)].IndexOf("\r\n"u8);
        if (end < 0) return head.Length < V1MaxLength ? Outcome.NeedMore : Outcome.Invalid;
        length = end + 2;
        var fields = Encoding.ASCII.GetString(head[..end]).Split(' ');
        if (fields is ["PROXY", "UNKNOWN", ..]) return Outcome.Header;
        if (fields is not ["PROXY", "TCP4" or "TCP6", var source, _, var port, _]
            || !IPAddress.TryParse(source, out var address) || !ushort.TryParse(port, out var sourcePort)
            || (address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork) != (fields[1] == "TCP4"))
            return Outcome.Invalid;
        client = new IPEndPoint(address, sourcePort);
        return Outcome.Header;
    }
}
