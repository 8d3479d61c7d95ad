using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text.Json;

namespace Ws2s.Host.Tests;

/// <summary>Large transfers through the bridge, compared byte for byte (by length and SHA-256).</summary>
public sealed class TransferTests
{
    private const long Size = 64L << 20;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Sixty_four_MiB_from_the_client_reach_the_peer_intact(bool binaryFrames)
    {
        var received = new TaskCompletionSource<(long Length, string Sha256)>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sink = Peer.Sink(received);
        await using var host = await Ws2sHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = sink.Port });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");

        // Pipelined: every chunk is sent without waiting; the answers are counted afterwards.
        var chunk = new byte[64 * 1024];
        var answers = binaryFrames ? Task.CompletedTask : Task.Run(async () =>
        {
            for (var done = 0; done < Size / chunk.Length; done++)
                Assert.Equal("sendb done", (string)(await client.ReceiveJsonAsync())["message"]!);
        });
        for (long at = 0; at < Size; at += chunk.Length)
        {
            Peer.Pattern(at, chunk);
            if (binaryFrames) await client.SendBinaryAsync(chunk);
            else await client.SendAsync(new { command = "sendb", data = Convert.ToBase64String(chunk) });
        }
        await answers.WaitAsync(TimeSpan.FromMinutes(2));
        await client.SendAsync(new { command = "close" });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"close done"}""");

        var (length, sha) = await received.Task.WaitAsync(TimeSpan.FromMinutes(2));
        Assert.Equal(Size, length);
        Assert.Equal(Peer.PatternSha256(Size), sha);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Sixty_four_MiB_from_the_peer_reach_the_client_intact_then_code_5(bool binaryMode)
    {
        using var source = Peer.Source(Size);
        await using var host = await Ws2sHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = source.Port, binary = binaryMode });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long total = 0;
        while (true)
        {
            var message = await client.ReceiveAsync();
            if (message.Type == WebSocketMessageType.Binary)
            {
                Assert.True(binaryMode, "binary frame on a JSON-mode connection");
                hash.AppendData(message.Bytes);
                total += message.Bytes.Length;
                continue;
            }
            using var json = JsonDocument.Parse(message.Bytes);
            var code = json.RootElement.GetProperty("code").GetInt32();
            if (code == -1)
            {
                Assert.False(binaryMode, "recv data on a binary-mode connection");
                var bytes = json.RootElement.GetProperty("data").GetBytesFromBase64();
                Assert.InRange(bytes.Length, 1, 64 * 1024);
                hash.AppendData(bytes);
                total += bytes.Length;
                continue;
            }
            Assert.Equal(5, code);
            break;
        }
        Assert.Equal(Size, total);
        Assert.Equal(Peer.PatternSha256(Size), Convert.ToHexString(hash.GetHashAndReset()));
    }

    [Fact]
    public async Task An_echo_of_sixteen_MiB_sent_and_read_at_once_neither_deadlocks_nor_loses_a_byte()
    {
        const long size = 16L << 20;
        using var echo = Peer.Echo();
        await using var host = await Ws2sHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = echo.Port, binary = true });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");

        var reader = Task.Run(async () =>
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long total = 0;
            while (total < size)
            {
                var message = await client.ReceiveAsync();
                Assert.Equal(WebSocketMessageType.Binary, message.Type);
                hash.AppendData(message.Bytes);
                total += message.Bytes.Length;
            }
            Assert.Equal(size, total);
            return Convert.ToHexString(hash.GetHashAndReset());
        });
        var chunk = new byte[16 * 1024];
        for (long at = 0; at < size; at += chunk.Length)
        {
            Peer.Pattern(at, chunk);
            await client.SendBinaryAsync(chunk);
        }
        Assert.Equal(Peer.PatternSha256(size), await reader.WaitAsync(TimeSpan.FromMinutes(2)));
    }
}
