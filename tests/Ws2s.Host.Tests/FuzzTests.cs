using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace Ws2s.Host.Tests;

/// <summary>
/// Thousands of random and mutated frames (text, binary, fragmented, oversized, aborted) at a live
/// server, while a healthy session streams through it: the healthy one must lose nothing, and every
/// answer the fuzzed sessions get must be a well-formed response.
/// </summary>
public sealed class FuzzTests
{
    /// <summary>Every code a response can carry, read from the core's union (so a new code is known here the day it exists).</summary>
    private static readonly HashSet<int> ResponseCodes = Microsoft.FSharp.Reflection.FSharpType.GetUnionCases(typeof(Ws2s.Protocol.Response), null)
        .Select(c => ((Ws2s.Protocol.Response)Microsoft.FSharp.Reflection.FSharpValue.MakeUnion(c,
            c.GetFields().Select(f => f.PropertyType == typeof(string) ? "" : f.PropertyType.IsValueType ? Activator.CreateInstance(f.PropertyType) : null).ToArray(), null)).Code)
        .ToHashSet();

    private static readonly string[] Seeds =
    [
        """{"command":"connect","host":"127.0.0.1","port":PORT}""",
        """{"command":"connect","host":"127.0.0.1","port":PORT,"binary":true}""",
        """{"command":"send","data":"hello"}""",
        """{"command":"sendb","data":"AAECAw=="}""",
        """{"command":"close"}""",
        """{"command":"ping"}""",
    ];

    private const string JsonCharacters = "{}[]\":,\\0-e.9";

    private static byte[] Mutate(Random random, byte[] frame)
    {
        var bytes = frame.ToList();
        for (var i = random.Next(1, 4); i > 0 && bytes.Count > 0; i--)
        {
            switch (random.Next(4))
            {
                case 0: bytes[random.Next(bytes.Count)] = (byte)random.Next(256); break;
                case 1: bytes.RemoveAt(random.Next(bytes.Count)); break;
                case 2: bytes.Insert(random.Next(bytes.Count), (byte)JsonCharacters[random.Next(JsonCharacters.Length)]); break;
                default:
                    var at = random.Next(bytes.Count);
                    bytes.RemoveRange(at, Math.Min(random.Next(1, 5), bytes.Count - at));
                    break;
            }
        }
        return bytes.ToArray();
    }

    [Fact]
    public async Task Thousands_of_bad_frames_never_disturb_a_healthy_session()
    {
        using var echo = Peer.Echo();
        await using var host = await Ws2sHost.StartAsync(true, "--limits:maxMessageBytes", "65536");

        // The healthy session: binary mode, a steady stream, every byte checked.
        await using var healthy = await host.ConnectAsync();
        await healthy.SendAsync(new { command = "connect", host = "127.0.0.1", port = echo.Port, binary = true });
        await healthy.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
        using var stop = new CancellationTokenSource();
        var streamed = Task.Run(async () =>
        {
            long sent = 0, received = 0;
            var chunk = new byte[4096];
            while (!stop.IsCancellationRequested || received < sent)
            {
                if (!stop.IsCancellationRequested && sent - received < 64 * 1024)
                {
                    Peer.Pattern(sent, chunk);
                    await healthy.SendBinaryAsync(chunk);
                    sent += chunk.Length;
                    continue;
                }
                var message = await healthy.ReceiveAsync();
                Assert.Equal(WebSocketMessageType.Binary, message.Type);
                var expected = new byte[message.Bytes.Length];
                Peer.Pattern(received, expected);
                Assert.Equal(expected, message.Bytes);
                received += message.Bytes.Length;
            }
            return received;
        });

        var random = new Random(20261126);
        var frames = 0;
        while (frames < 3000)
        {
            await using var fuzzed = await host.ConnectAsync();
            int? expectedClose = null;
            for (var i = 0; i < 300; i++, frames++)
            {
                var seed = Encoding.UTF8.GetBytes(Seeds[random.Next(Seeds.Length)].Replace("PORT", echo.Port.ToString()));
                var roll = random.Next(100);
                if (roll < 45) await fuzzed.SendTextAsync(Encoding.UTF8.GetString(Mutate(random, seed)));
                else if (roll < 48)
                {
                    // Raw bytes in a text frame: invalid UTF-8 must close the session with 1007 (RFC 6455).
                    var raw = Mutate(random, seed);
                    await fuzzed.Socket.SendAsync(raw, WebSocketMessageType.Text, true, CancellationToken.None);
                    if (!IsUtf8(raw))
                    {
                        expectedClose = 1007;
                        break;
                    }
                }
                else if (roll < 65) await fuzzed.SendBinaryAsync(RandomBytes(random, random.Next(0, 2000)));
                else if (roll < 82)
                {
                    // One message in several frames.
                    var pieces = random.Next(2, 5);
                    var cut = seed.Length / pieces;
                    for (var p = 0; p < pieces; p++)
                    {
                        var part = p == pieces - 1 ? seed[(p * cut)..] : seed[(p * cut)..((p + 1) * cut)];
                        await fuzzed.Socket.SendAsync(part, WebSocketMessageType.Text, p == pieces - 1, CancellationToken.None);
                    }
                }
                else if (roll < 99) await fuzzed.SendTextAsync(Seeds[random.Next(Seeds.Length)].Replace("PORT", echo.Port.ToString()));
                else
                {
                    await fuzzed.SendBinaryAsync(RandomBytes(random, 70_000)); // over the limit: 1009
                    expectedClose = 1009;
                    break;
                }
            }
            try { await AssertAnswersAreWellFormedAsync(fuzzed, expectedClose); }
            catch (WebSocketException e) { throw new Exception($"session ended badly, expected close {expectedClose}", e); }
        }

        stop.Cancel();
        var total = await streamed.WaitAsync(TimeSpan.FromMinutes(2));
        Assert.True(total > 0);
    }

    private static bool IsUtf8(byte[] bytes)
    {
        try
        {
            _ = new UTF8Encoding(false, true).GetString(bytes);
            return true;
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }

    private static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    /// <summary>Ends the session with a ping (or expects its close) and checks every message received is a proper response.</summary>
    private static async Task AssertAnswersAreWellFormedAsync(WsClient client, int? expectedClose)
    {
        if (expectedClose is null) await client.SendAsync(new { command = "ping" });
        while (true)
        {
            var message = await client.ReceiveAsync();
            if (message.Type == WebSocketMessageType.Close)
            {
                Assert.True(expectedClose is not null, $"closed unexpectedly: {message}");
                Assert.Equal(expectedClose, message.CloseStatus);
                return;
            }
            if (message.Type == WebSocketMessageType.Binary) continue; // echo in binary mode
            using var json = JsonDocument.Parse(message.Bytes);
            var root = json.RootElement;
            Assert.Equal(["success", "code", "message"], root.EnumerateObject().Select(p => p.Name).Take(3));
            var code = root.GetProperty("code").GetInt32();
            Assert.Contains(code, ResponseCodes);
            Assert.NotEqual(1, code); // an unexpected server error is a bug
            if (expectedClose is null && root.GetProperty("message").GetString() == "ping done") return;
        }
    }
}
