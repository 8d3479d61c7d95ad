using System.IO.Pipelines;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Ws2s.AspNetCore.Connectors;
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
            services => services.TryAddEnumerable(ServiceDescriptor.Singleton<IConnector, MemConnector>()));

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

    /// <summary>Peers named <c>mem:NAME</c>: an in-memory pipe whose other end shouts back what it is sent, until its input ends.</summary>
    private sealed class MemConnector : IConnector
    {
        public string Scheme => "mem";

        public Task<PeerStream> ConnectAsync(Hop hop, PeerContext context, CancellationToken cancel)
        {
            var toPeer = new Pipe();
            var fromPeer = new Pipe();
            _ = ShoutAsync(toPeer.Reader, fromPeer.Writer);
            var stream = new Duplex(fromPeer.Reader.AsStream(), toPeer.Writer.AsStream());
            return Task.FromResult(new PeerStream(stream, () => toPeer.Writer.Complete()));
        }

        private static async Task ShoutAsync(PipeReader input, PipeWriter output)
        {
            while (true)
            {
                var read = await input.ReadAsync();
                foreach (var segment in read.Buffer)
                    await output.WriteAsync(Encoding.ASCII.GetBytes(Encoding.ASCII.GetString(segment.Span).ToUpperInvariant()));
                input.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted) break;
            }
            await output.CompleteAsync();
        }
    }

    /// <summary>One stream reading from one pipe and writing to another.</summary>
    private sealed class Duplex(Stream reading, Stream writing) : Stream
    {
        public override bool CanRead => true;
        public override bool CanWrite => true;
        public override bool CanSeek => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancel = default) => reading.ReadAsync(buffer, cancel);
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancel = default) => writing.WriteAsync(buffer, cancel);
        public override int Read(byte[] buffer, int offset, int count) => reading.Read(buffer, offset, count);
        public override void Write(byte[] buffer, int offset, int count) => writing.Write(buffer, offset, count);
        public override void Flush() => writing.Flush();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                reading.Dispose();
                writing.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
