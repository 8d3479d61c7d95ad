using System.IO.Pipelines;
using System.Text;
using Ws2s.AspNetCore.Connectors;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Tests;

// Written against the library's public API only, as an application would write it; the host's tests compile this
// same file (ConnectorSeamTests: the seam through DI alone, without the builder).

/// <summary>Peers named <c>mem:NAME</c>: an in-memory pipe whose other end shouts back what it is sent.</summary>
public sealed class ShoutConnector : IConnector
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
internal sealed class Duplex(Stream reading, Stream writing) : Stream
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
