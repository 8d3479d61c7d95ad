using System.Text;
using BenchmarkDotNet.Attributes;
using Microsoft.FSharp.Core;
using Ws2s.Protocol;

namespace Ws2s.Bench;

/// <summary>BenchmarkDotNet micro-benchmarks of the hot paths of the pure core: the codec and one step.</summary>
[MemoryDiagnoser]
[InProcess]
public class Micro
{
    private readonly byte[] _sendb = Encoding.UTF8.GetBytes("{\"command\":\"sendb\",\"data\":\"" + Convert.ToBase64String(new byte[16 * 1024]) + "\"}");
    private readonly byte[] _ping = Encoding.UTF8.GetBytes("""{"command":"ping"}""");
    private readonly ReadOnlyMemory<byte> _chunk = new byte[16 * 1024];
    private readonly System.Buffers.ArrayBufferWriter<byte> _out = new(64 * 1024);
    private System.Text.Json.Utf8JsonWriter _writer = null!;
    private Session.Session _open = null!;

    [GlobalSetup]
    public void Setup()
    {
        _writer = new System.Text.Json.Utf8JsonWriter(_out, Codec.writerOptions);
        var settings = new Session.Settings(Policy.serverLocalOnly(true), 10, 64, 4 << 20, 0, 30, 0, Microsoft.FSharp.Collections.FSharpList<Policy.Rule>.Empty, true, 250, null, false, Resumption.defaultSettings);
        var connect = Input.NewClientText(Encoding.UTF8.GetBytes("""{"command":"connect","host":"127.0.0.1","port":7}"""));
        var (s, _) = Session.step(Session.start(settings, Instant.Zero), Instant.Zero, connect);
        (_open, _) = Session.step(s, Instant.Zero, Input.NewDialled(1L));
    }

    [Benchmark]
    public Request ParsePing() => Codec.parseRequest(_ping);

    [Benchmark]
    public Request ParseSendb16KiB() => Codec.parseRequest(_sendb);

    [Benchmark]
    public int WriteRecvData16KiB()
    {
        _out.ResetWrittenCount();
        _writer.Reset();
        Codec.writeResponse(_writer, Response.NewRecvData(_chunk));
        return _out.WrittenCount;
    }

    /// <summary>One peer read relayed: the step that turns Received into a Reply.</summary>
    [Benchmark]
    public int StepReceived() => Session.step(_open, Instant.Zero, Input.NewReceived(1L, _chunk)).Item2.Length;

    /// <summary>A sendb request stepped into a write.</summary>
    [Benchmark]
    public int StepSendb() => Session.step(_open, Instant.Zero, Input.NewClientText(_sendb)).Item2.Length;
}
