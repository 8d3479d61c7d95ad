using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Ws2s.AspNetCore.Connectors;
using Ws2s.Protocol;

namespace Ws2s.Host.Tests;

/// <summary>
/// A relayed message crosses no thread (issue 23): the sockets ws2s relays over complete inline on the runtime's event
/// thread, and the session goes on on that thread. So nothing that may block may run there, or every socket on that
/// thread waits with it.
/// </summary>
public sealed class InlineCompletionsTests
{
    [Fact]
    public void This_runtime_lets_ws2s_choose_inline_completions_per_socket()
    {
        // A runtime that dropped its internal switch would leave ws2s relaying through the thread pool, slower but right:
        // this says so here instead of only in a benchmark.
        Assert.True(InlineCompletions.Supported);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        Assert.False(InlineCompletions.IsInline(socket));
        InlineCompletions.Prefer(socket, inline: true);
        Assert.True(InlineCompletions.IsInline(socket));
    }

    /// <summary>What the switch does: a receive that waited completes on the runtime's event thread, not a pool thread.</summary>
    [Fact]
    public async Task A_receive_on_an_inline_socket_completes_off_the_thread_pool()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        using var sender = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await sender.ConnectAsync(listener.LocalEndPoint!);
        using var receiver = await listener.AcceptAsync();

        Assert.True(await CompletesOnThreadPoolAsync(receiver, sender));
        InlineCompletions.Prefer(receiver, inline: true);
        Assert.False(await CompletesOnThreadPoolAsync(receiver, sender));
    }

    private static async Task<bool> CompletesOnThreadPoolAsync(Socket receiver, Socket sender)
    {
        var receive = receiver.ReceiveAsync(new byte[1], SocketFlags.None);
        Assert.False(receive.IsCompleted); // it waits for the byte sent below
        // The continuation is registered before the byte is sent: awaited only after the send, a receive completed meanwhile
        // would go on on this (pool) thread instead of the one that completed it.
        var where = ThreadOfCompletionAsync(receive);
        await sender.SendAsync(new byte[] { 1 }, SocketFlags.None);
        return await where;
    }

    private static async Task<bool> ThreadOfCompletionAsync(Task<int> receive)
    {
        await receive.ConfigureAwait(false); // goes on on the thread that completed the receive
        return Thread.CurrentThread.IsThreadPoolThread;
    }

    /// <summary>
    /// The attack: an application's connector that blocks its thread (a synchronous call into a slow service). The
    /// connect command reaches the session on the client socket's event thread; were the connector run there, every other
    /// session's socket on that thread would stall until it returned.
    /// </summary>
    [Fact]
    public async Task A_connector_that_blocks_holds_up_no_other_session()
    {
        using var release = new ManualResetEventSlim();
        var blocking = new BlockingConnector(release);
        using var echo = Peer.Echo();
        await using var host = await Ws2sHost.StartAsync(
            TestConfig.Loopback.With(o => o.Destinations.Allow = ["127.0.0.1", "stuck:forever"]),
            services => services.TryAddEnumerable(ServiceDescriptor.Singleton<IConnector>(blocking)));
        try
        {
            await using var stuck = await host.ConnectAsync();
            await stuck.SendAsync(new { command = "connect", host = "stuck:forever" });
            await blocking.Entered.Task.WaitAsync(WsClient.Patience);

            await using var other = await host.ConnectAsync();
            await other.EchoThroughAsync(echo.Port, "still moving");
            Assert.False(release.IsSet); // the connector was still blocked all along
        }
        finally
        {
            release.Set();
        }
    }

    /// <summary>A peer relays with inline completions; the socket is the connector's, so the test can look at it.</summary>
    [Fact]
    public async Task A_peer_socket_relays_with_inline_completions()
    {
        using var echo = Peer.Echo();
        var keeping = new KeepingConnector(echo.Port);
        await using var host = await Ws2sHost.StartAsync(
            TestConfig.Loopback.With(o => o.Destinations.Allow = ["kept:echo"]),
            services => services.TryAddEnumerable(ServiceDescriptor.Singleton<IConnector>(keeping)));
        await using var client = await host.ConnectAsync();
        await client.SendAsync(new { command = "connect", host = "kept:echo", binary = true });
        await client.ExpectAsync("""{"success":true,"code":0,"message":"connect done"}""");
        await client.SendBinaryAsync("ping"u8.ToArray());
        Assert.Equal("ping", (await client.ReceiveAsync()).Text);
        var socket = await keeping.Socket.Task;
        Assert.False(keeping.InlineWhileConnecting);
        Assert.True(InlineCompletions.IsInline(socket));
    }

    private sealed class BlockingConnector(ManualResetEventSlim release) : IConnector
    {
        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public string Scheme => "stuck";

        public Task<PeerStream> ConnectAsync(Hop hop, PeerContext context, CancellationToken cancel)
        {
            Entered.TrySetResult();
            release.Wait(TimeSpan.FromSeconds(60)); // blocks the thread it is called on, as the attack does
            throw new DialFailedException(DialError.NewDialFailed("gave up"));
        }
    }

    private sealed class KeepingConnector(int port) : IConnector
    {
        public TaskCompletionSource<Socket> Socket { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public bool InlineWhileConnecting { get; private set; } = true;

        public string Scheme => "kept";

        public async Task<PeerStream> ConnectAsync(Hop hop, PeerContext context, CancellationToken cancel)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cancel);
            InlineWhileConnecting = InlineCompletions.IsInline(socket);
            Socket.TrySetResult(socket);
            return PeerStream.Of(socket);
        }
    }
}
