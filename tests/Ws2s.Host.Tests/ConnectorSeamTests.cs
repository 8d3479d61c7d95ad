using System.IO.Pipelines;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Ws2s.AspNetCore.Connectors;
using Ws2s.AspNetCore.Tests;
using Ws2s.Protocol;

namespace Ws2s.Host.Tests;

/// <summary>
/// The test of the transport seam (issue 22): a connector written here, for a made-up scheme
/// <c>mem:</c> whose peers are in-memory pipes, plugs in through DI alone (no file of the runner knows
/// it) and a session relays through it, judged by the same policy as every other destination.
/// </summary>
public sealed class ConnectorSeamTests
{
    private static Task<Ws2sHost> StartAsync(params string[] allow) =>
        Ws2sHost.StartAsync(TestConfig.Defaults.With(o => o.Destinations.Allow = [.. allow]),
            services => services.TryAddEnumerable(ServiceDescriptor.Singleton<IConnector, ShoutConnector>()));

    [Fact]
    public async Task A_connector_registered_with_DI_carries_a_session_in_json_and_binary_mode()
    {
        await using var host = await StartAsync("mem:shout");
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "mem:shout" });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
        await client.SendAsync(new { command = "send", data = "hello" });
        var received = new MemoryStream();
        await client.ExpectAnswerAsync("""{"success":true,"code":0,"message":"send done"}""", received);
        await client.ReadDataAsync(received, 5);
        Assert.Equal("HELLO", Encoding.ASCII.GetString(received.ToArray()));

        await client.SendAsync(new { command = "connect", host = "mem:shout", binary = true });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
        await client.SendBinaryAsync("binary"u8.ToArray());
        Assert.Equal("BINARY", (await client.ReceiveAsync()).Text);
        // Half-close reaches the in-memory peer, which ends its side: code 5 as for any peer.
        await client.SendAsync(new { command = "shutdown" });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"shutdown done"}""");
        await client.ExpectAsync("""{"success":false,"code":5,"message":"connection closed by peer"}""");
    }

    [Fact]
    public async Task A_named_peer_not_listed_is_refused_and_a_scheme_without_a_connector_is_code_2()
    {
        await using var host = await StartAsync("mem:shout", "nowhere:x");
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "mem:other" });
        var refused = await client.ReceiveJsonAsync();
        Assert.Equal(4, (int)refused["code"]!);
        Assert.Contains("add \"mem:other\"", (string)refused["message"]!);
        await client.SendAsync(new { command = "connect", host = "nowhere:x" });
        await client.ExpectAsync("""{"success":false,"code":2,"message":"this server has no connector for nowhere: destinations"}""");
    }

    /// <summary>
    /// Review of the write-behind: "send done" comes before the bytes have left ws2s, so a close right after it must not
    /// throw them away. Here the peer's stream finishes every write later (as a pipe under backpressure or a QUIC stream
    /// would), and the client sends `close` at once, pipelined and after the answer.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Send_then_close_reaches_a_peer_whose_writes_finish_later(bool pipelined)
    {
        var slow = new SlowSinkConnector();
        await using var host = await Ws2sHost.StartAsync(TestConfig.Defaults.With(o => o.Destinations.Allow = ["slow:sink"]),
            services => services.TryAddEnumerable(ServiceDescriptor.Singleton<IConnector>(slow)));
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "slow:sink" });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
        await client.SendAsync(new { command = "send", data = "hello" });
        if (!pipelined) await client.ExpectAsync("""{"success":true,"code":0,"message":"send done"}""");
        await client.SendAsync(new { command = "close" });
        if (pipelined) await client.ExpectAsync("""{"success":true,"code":0,"message":"send done"}""");
        await client.ExpectAsync("""{"success":true,"code":0,"message":"close done"}""");
        slow.Writes.SetResult(); // the peer's writes finish only now, after the close
        Assert.Equal("hello", await slow.ClosedWith.Task.WaitAsync(WsClient.Patience));
    }

    /// <summary>Peers (scheme <c>slow:</c>) whose writes finish once <see cref="Writes"/> is set; what one was sent when it is disposed.</summary>
    private sealed class SlowSinkConnector : IConnector
    {
        public TaskCompletionSource<string> ClosedWith { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Writes { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public string Scheme => "slow";

        public Task<PeerStream> ConnectAsync(Hop hop, PeerContext context, CancellationToken cancel) =>
            Task.FromResult(new PeerStream(new SlowSink(Writes.Task, ClosedWith), () => { }));

        private sealed class SlowSink(Task writes, TaskCompletionSource<string> closedWith) : TestStream
        {
            private readonly MemoryStream _received = new();

            public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancel = default)
            {
                await writes.WaitAsync(cancel);
                lock (_received) _received.Write(buffer.Span);
            }

            public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancel = default)
            {
                await Task.Delay(Timeout.Infinite, cancel); // says nothing
                return 0;
            }

            protected override void Dispose(bool disposing)
            {
                lock (_received) closedWith.TrySetResult(Encoding.ASCII.GetString(_received.ToArray()));
                base.Dispose(disposing);
            }

            public override bool CanRead => true;
            public override bool CanWrite => true;
        }
    }
}
