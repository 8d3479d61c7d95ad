namespace Ws2s.Host.Tests;

/// <summary>
/// Attack (issue 24, review): a Wisp connection may open up to <c>wisp.maxStreamOpensPerSecond</c> streams a second, each to a
/// host name of its choosing, and a client may hold many connections: without a rate of lookups per client, one page has
/// this server ask its resolver about hundreds of names a second. ws2sd runs in a network namespace the test creates
/// (<c>unshare -n</c>, only <c>lo</c>): every lookup fails there without a packet leaving, which is all the test needs,
/// since what it counts is how many names ws2s tried to look up (CLOSE 0x42 "unreachable": looked up, not found) and
/// how many it refused without a lookup (CLOSE 0x49 "throttled").
/// </summary>
public sealed class LookupRateTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("ws2s-lookups-").FullName;

    public void Dispose() => Directory.Delete(_home, recursive: true);

    /// <summary>A Wisp v1 client: 20 CONNECTs to 20 names at once, then prints each stream's CLOSE reason.</summary>
    private const string Client = """
        import net from 'node:net';
        const [port, count] = process.argv.slice(2).map(Number);
        async function listening() {
          for (let i = 0; i < 300; i++) {
            const up = await new Promise(r => { const c = net.connect(port, '127.0.0.1', () => { c.end(); r(true); }); c.on('error', () => r(false)); });
            if (up) return;
            await new Promise(r => setTimeout(r, 100));
          }
          throw new Error('ws2s did not listen');
        }
        function packet(type, id, payload) {
          const bytes = new Uint8Array(5 + payload.length);
          bytes[0] = type;
          new DataView(bytes.buffer).setUint32(1, id, true);
          bytes.set(payload, 5);
          return bytes;
        }
        await listening();
        const ws = new WebSocket(`ws://127.0.0.1:${port}/wisp/`);
        ws.binaryType = 'arraybuffer';
        let closed = 0;
        ws.onmessage = (e) => {
          const bytes = new Uint8Array(e.data);
          const id = new DataView(e.data).getUint32(1, true);
          if (bytes[0] === 3 && id === 0) {
            for (let i = 1; i <= count; i++) {
              const host = new TextEncoder().encode(`name${i}.example`);
              const payload = new Uint8Array(3 + host.length);
              payload[0] = 1;
              new DataView(payload.buffer).setUint16(1, 80, true);
              payload.set(host, 3);
              ws.send(packet(1, i, payload));
            }
          } else if (bytes[0] === 4) {
            console.log(`CLOSE ${id} 0x${bytes[5].toString(16)}`);
            if (++closed === count) { console.log('CLIENT DONE'); process.exit(0); }
          }
        };
        ws.onerror = () => { console.log('CLIENT DONE websocket error'); process.exit(1); };
        """;

    private async Task<List<string>> CloseReasonsAsync(int lookupsPerSecond)
    {
        var (done, output) = await NetworkNamespace.RunAsync(_home, Client, 3614, o => o.Limits.MaxLookupsPerClientPerSecond = lookupsPerSecond, "3614 20");
        Assert.Equal("CLIENT DONE", done);
        return [.. output.Where(line => line.StartsWith("CLOSE ", StringComparison.Ordinal)).Select(line => line.Split(' ')[2])];
    }

    [SkippableFact]
    public async Task Without_a_rate_every_name_a_wisp_client_sends_is_looked_up()
    {
        // The attack as it was: 20 names at once, 20 lookups (each fails in the namespace: 0x42).
        var reasons = await CloseReasonsAsync(lookupsPerSecond: 0);
        Assert.Equal(20, reasons.Count);
        Assert.All(reasons, reason => Assert.Equal("0x42", reason));
    }

    [SkippableFact]
    public async Task Past_the_clients_lookups_per_second_names_are_refused_0x49_without_a_lookup()
    {
        var reasons = await CloseReasonsAsync(lookupsPerSecond: 5);
        Assert.Equal(20, reasons.Count);
        // Five lookups, and a few more if the bucket refilled while the 20 were handled (a fresh server on a busy machine can
        // take most of a second); the rest refused before any lookup.
        Assert.InRange(reasons.Count(reason => reason == "0x42"), 5, 9);
        Assert.Equal(20 - reasons.Count(reason => reason == "0x42"), reasons.Count(reason => reason == "0x49"));
    }
}
