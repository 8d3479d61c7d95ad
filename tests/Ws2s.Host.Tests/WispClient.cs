using System.Buffers.Binary;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Ws2s.Host.Tests;

/// <summary>
/// Wisp as the tests speak it by hand (to say exactly what goes on the wire, odd packets too), and the real client
/// nobody here wrote: <c>@mercuryworkshop/wisp-js</c> from npm, driven by tests/Ws2s.Host.Tests/wisp/wisp-js-client.mjs.
/// </summary>
public static class WispClient
{
    public static byte[] Packet(byte type, uint stream, ReadOnlySpan<byte> payload)
    {
        var bytes = new byte[5 + payload.Length];
        bytes[0] = type;
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(1), stream);
        payload.CopyTo(bytes.AsSpan(5));
        return bytes;
    }

    public static byte[] Connect(uint stream, int port, string host, byte kind = 1)
    {
        var name = Encoding.UTF8.GetBytes(host);
        var payload = new byte[3 + name.Length];
        payload[0] = kind;
        BinaryPrimitives.WriteUInt16LittleEndian(payload.AsSpan(1), (ushort)port);
        name.CopyTo(payload, 3);
        return Packet(1, stream, payload);
    }

    public static byte[] Data(uint stream, ReadOnlySpan<byte> bytes) => Packet(2, stream, bytes);

    public static byte[] Close(uint stream, byte reason = 0x02) => Packet(4, stream, [reason]);

    /// <summary>A client INFO (v2.0) carrying the password extension: draft 6's encoding, or draft 5's (wisp-js, epoxy) with its length.</summary>
    public static byte[] PasswordInfo(string username, string password, bool draft5 = false)
    {
        var user = Encoding.UTF8.GetBytes(username);
        var pass = Encoding.UTF8.GetBytes(password);
        byte[] payload = draft5
            ? [(byte)user.Length, (byte)pass.Length, (byte)(pass.Length >> 8), .. user, .. pass]
            : [(byte)user.Length, .. user, .. pass];
        var extension = new byte[5 + payload.Length];
        extension[0] = 0x02;
        BinaryPrimitives.WriteUInt32LittleEndian(extension.AsSpan(1), (uint)payload.Length);
        payload.CopyTo(extension, 5);
        return Packet(5, 0, [2, 0, .. extension]);
    }

    /// <summary>A packet as received: type, stream, payload.</summary>
    public readonly record struct Received(byte Type, uint Stream, byte[] Payload)
    {
        public uint Credits => BinaryPrimitives.ReadUInt32LittleEndian(Payload);
        public byte Reason => Payload[0];
    }

    public static async Task<Received> ReceivePacketAsync(this WsClient client)
    {
        var message = await client.ReceiveAsync();
        Assert.True(message.Type == WebSocketMessageType.Binary, $"expected a wisp packet, got {message}");
        return new(message.Bytes[0], BinaryPrimitives.ReadUInt32LittleEndian(message.Bytes.AsSpan(1)), message.Bytes[5..]);
    }

    /// <summary>Packets until the one on <paramref name="stream"/> of <paramref name="type"/> (DATA of others is skipped).</summary>
    public static async Task<Received> ReceiveOnAsync(this WsClient client, uint stream, byte type)
    {
        while (true)
        {
            var packet = await client.ReceivePacketAsync();
            if (packet.Stream == stream && packet.Type == type) return packet;
            Assert.True(packet.Type is 2 or 3, $"unexpected packet {packet.Type} on stream {packet.Stream} while waiting for {type} on {stream}");
        }
    }

    /// <summary>A v1 connection, past the server's first CONTINUE (which it returns).</summary>
    public static async Task<(WsClient Client, uint Credits)> OpenAsync(Uri url, string? origin = "http://localhost:8080")
    {
        var client = await WsClient.ConnectAsync(url, origin);
        var hello = await client.ReceivePacketAsync();
        Assert.Equal((3, 0u), (hello.Type, hello.Stream));
        return (client, hello.Credits);
    }

    /// <summary>A v2 connection whose INFO asks for stream-open confirmation: a stream's CONTINUE says its socket is connected.</summary>
    public static async Task<WsClient> OpenConfirmingAsync(Uri url, string? origin = "http://localhost:8080")
    {
        var client = await WsClient.ConnectAsync(url, origin, "wisp-v2");
        Assert.Equal(5, (await client.ReceivePacketAsync()).Type);
        Assert.Equal(3, (await client.ReceivePacketAsync()).Type);
        await client.SendBinaryAsync(Packet(5, 0, [2, 0, 0x05, 0, 0, 0, 0]));
        return client;
    }

    /// <summary>Opens stream <paramref name="id"/> and waits for its confirmation (or its CLOSE, returned).</summary>
    public static async Task<Received> ConnectAsync(this WsClient client, uint id, int port, string host = "127.0.0.1")
    {
        await client.SendBinaryAsync(Connect(id, port, host));
        while (true)
        {
            var packet = await client.ReceivePacketAsync();
            if (packet.Stream == id && packet.Type is 3 or 4) return packet;
        }
    }

    // The real client.

    /// <summary>wisp-js from the npm registry (see <see cref="Npm"/>).</summary>
    public static Task<string> ModulesAsync() => Npm.InstallAsync("@mercuryworkshop/wisp-js@0.5.0");

    /// <summary>Runs the wisp-js client script with <paramref name="args"/>; its one line of JSON.</summary>
    public static async Task<JsonObject> RunAsync(params string[] args)
    {
        var modules = await ModulesAsync();
        var script = Path.Combine(Repository.Root, "tests", "Ws2s.Host.Tests", "wisp", "wisp-js-client.mjs");
        var run = await Command.RunAsync("node", [script, "--modules", modules, .. args], patience: TimeSpan.FromMinutes(2));
        var line = run.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault();
        Assert.True(line is not null, $"the wisp-js client printed nothing: {run.Printed}");
        return JsonNode.Parse(line)!.AsObject();
    }
}
