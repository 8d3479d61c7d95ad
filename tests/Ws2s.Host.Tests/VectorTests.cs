using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Ws2s.Host.Tests;

/// <summary>spec/vectors replayed against the live server over real loopback sockets.</summary>
public sealed class VectorTests
{
    public static TheoryData<string> Vectors()
    {
        var data = new TheoryData<string>();
        foreach (var path in Directory.GetFiles(Repository.Vectors, "*.json").Order()) data.Add(Path.GetFileName(path));
        return data;
    }

    [Theory]
    [MemberData(nameof(Vectors))]
    public async Task The_live_server_follows_the_vector(string file)
    {
        var vector = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(Repository.Vectors, file)))!.AsObject();
        using var echo = Peer.Echo();
        using var greeter = Peer.Greeter();
        using var refused = new RefusedPort();
        var ports = new Dictionary<string, int> { ["$ECHO"] = echo.Port, ["$GREETER"] = greeter.Port, ["$REFUSED"] = refused.Port };

        await using var host = await Ws2sHost.StartAsync((bool)vector["allowConnectToServerLocal"]!);
        await using var client = await host.ConnectAsync();
        var recv = new MemoryStream();
        var binary = new MemoryStream();
        var messages = new Queue<JsonObject>();
        Message? closed = null;

        // Read until `ready` holds, sorting what arrives: recv data and binary frames are byte streams.
        async Task Until(Func<bool> ready)
        {
            while (!ready())
            {
                var message = await client.ReceiveAsync();
                switch (message.Type)
                {
                    case WebSocketMessageType.Close: closed = message; return;
                    case WebSocketMessageType.Binary: binary.Write(message.Bytes); break;
                    default:
                        var json = JsonNode.Parse(message.Text)!.AsObject();
                        if ((int)json["code"]! == -1) recv.Write(Convert.FromBase64String((string)json["data"]!));
                        else messages.Enqueue(json);
                        break;
                }
            }
        }

        foreach (var step in vector["steps"]!.AsArray().Select(s => s!.AsObject().Single()))
        {
            switch (step.Key)
            {
                case "client" when step.Value!.GetValueKind() == JsonValueKind.String:
                    await client.SendTextAsync((string)step.Value!);
                    break;
                case "client":
                    var request = step.Value!.DeepClone().AsObject();
                    foreach (var (key, value) in request.ToList())
                        if (value is JsonValue v && v.GetValueKind() == JsonValueKind.String && ports.TryGetValue((string)v!, out var port))
                            request[key] = port;
                    await client.SendTextAsync(request.ToJsonString());
                    break;
                case "clientBinary":
                    await client.SendBinaryAsync(Convert.FromBase64String((string)step.Value!));
                    break;
                case "expect":
                    await Until(() => messages.Count > 0 || closed is not null);
                    Assert.True(messages.Count > 0, $"{file}: closed ({closed}) while expecting {step.Value!.ToJsonString()}");
                    var actual = messages.Dequeue();
                    var expected = step.Value!.AsObject();
                    // "$TOKEN" stands for any string: a resume token, random.
                    foreach (var (key, value) in expected.ToList())
                        if (value is JsonValue v && v.GetValueKind() == JsonValueKind.String && (string)v! == "$TOKEN" && actual[key] is JsonValue a
                            && a.GetValueKind() == JsonValueKind.String)
                            actual[key] = "$TOKEN";
                    Assert.True(
                        JsonNode.DeepEquals(expected, actual) && expected.Select(p => p.Key).SequenceEqual(actual.Select(p => p.Key)),
                        $"{file}: expected {expected.ToJsonString()}, got {actual.ToJsonString()}");
                    break;
                case "expectRecv" or "expectRecvBase64":
                    var bytes = step.Key == "expectRecv" ? Encoding.UTF8.GetBytes((string)step.Value!) : Convert.FromBase64String((string)step.Value!);
                    await Until(() => recv.Length >= bytes.Length || closed is not null);
                    Assert.Equal(bytes, recv.ToArray());
                    recv.SetLength(0);
                    break;
                case "expectBinary":
                    var expectedBinary = Encoding.UTF8.GetBytes((string)step.Value!);
                    await Until(() => binary.Length >= expectedBinary.Length || closed is not null);
                    Assert.Equal(expectedBinary, binary.ToArray());
                    binary.SetLength(0);
                    break;
                case "expectClose":
                    await Until(() => closed is not null);
                    Assert.Equal((int)step.Value!, closed!.CloseStatus);
                    break;
                default:
                    throw new InvalidOperationException($"{file}: unknown step {step.Key}");
            }
        }
    }
}
