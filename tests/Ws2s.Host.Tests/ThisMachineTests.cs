using System.Diagnostics;

namespace Ws2s.Host.Tests;

/// <summary>
/// Attack (issue 10, 2): a service bound to 0.0.0.0 was reachable through the machine's own
/// non-loopback address. Run in a network namespace the test creates (<c>unshare -n</c>), where
/// 1.2.3.4 is an address of this "machine" (on the namespace's own <c>lo</c>), so nothing can leave
/// the machine. ws2sd and a Node client both run inside it; the client prints what ws2s answered.
/// </summary>
public sealed class ThisMachineTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("ws2s-netns-").FullName;

    public void Dispose() => Directory.Delete(_home, recursive: true);

    /// <summary>
    /// Serves 0.0.0.0:8000 inside the namespace, then asks ws2s to connect to 1.2.3.4:8000 and prints
    /// each answer as <c>ANSWER {json}</c>. With <c>late</c>, it first adds 1.2.3.4 to <c>lo</c>
    /// (after ws2s has started, so ws2s must notice the change) and asks until refused or 15 s pass.
    /// </summary>
    private const string Client = """
        import net from 'node:net';
        import { execFileSync } from 'node:child_process';
        const [mode, port] = process.argv.slice(2);
        net.createServer(s => s.end('hello from this machine\n')).listen(8000, '0.0.0.0');
        const tick = () => new Promise(r => setTimeout(r, 100));
        async function listening() {
          for (let i = 0; i < 300; i++) {
            const up = await new Promise(r => { const c = net.connect(+port, '127.0.0.1', () => { c.end(); r(true); }); c.on('error', () => r(false)); });
            if (up) return;
            await tick();
          }
          throw new Error('ws2s did not listen');
        }
        function ask() {
          return new Promise((resolve, reject) => {
            const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
            ws.onopen = () => ws.send(JSON.stringify({ command: 'connect', host: '1.2.3.4', port: 8000 }));
            ws.onmessage = e => { console.log('ANSWER ' + e.data); ws.close(); resolve(JSON.parse(e.data)); };
            ws.onerror = () => reject(new Error('websocket error'));
          });
        }
        await listening();
        if (mode === 'late') {
          execFileSync('ip', ['addr', 'add', '1.2.3.4/32', 'dev', 'lo']);
          const deadline = Date.now() + 15000;
          while ((await ask()).code !== 4 && Date.now() < deadline) await tick();
        } else {
          await ask();
        }
        console.log('CLIENT DONE');
        process.exit(0);
        """;

    private async Task<List<string>> RunAsync(string mode, bool allowServerLocal)
    {
        var setup = mode == "late" ? "ip link set lo up" : "ip link set lo up && ip addr add 1.2.3.4/32 dev lo";
        var (_, output) = await NetworkNamespace.RunAsync(_home, Client, 3613, o => o.AllowConnectToServerLocal = allowServerLocal, $"{mode} 3613", setup);
        return [.. output.Where(line => line.StartsWith("ANSWER ", StringComparison.Ordinal))];
    }

    [SkippableFact]
    public async Task The_machines_own_address_is_this_machine_and_refused_by_default()
    {
        var answers = await RunAsync("early", allowServerLocal: false);
        var answer = Assert.Single(answers);
        Assert.Contains("\"code\":4", answer);
        Assert.Contains("this machine's address 1.2.3.4", answer);
    }

    [SkippableFact]
    public async Task The_same_connect_reaches_the_service_when_this_machine_is_allowed()
    {
        // The control: the service is there, so the refusal above is the policy's, not the network's.
        var answer = Assert.Single(await RunAsync("early", allowServerLocal: true));
        Assert.Contains("connect done", answer);
    }

    [SkippableFact]
    public async Task An_address_added_after_start_is_refused_too()
    {
        var answers = await RunAsync("late", allowServerLocal: false);
        Assert.Contains("this machine's address 1.2.3.4", answers[^1]);
    }
}
