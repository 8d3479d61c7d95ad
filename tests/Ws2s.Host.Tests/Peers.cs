using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace Ws2s.Host.Tests;

/// <summary>
/// A real TCP server on 127.0.0.1 (or another loopback address) with an ephemeral port, serving every
/// accepted connection with <paramref name="serve"/>. Disposing it stops accepting and closes every connection.
/// </summary>
public sealed class Peer : IDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Socket> _accepted = [];

    public Peer(Func<Socket, CancellationToken, Task> serve, IPAddress? loopback = null)
    {
        if (loopback is not null && !IPAddress.IsLoopback(loopback)) throw new ArgumentException("tests listen on loopback only", nameof(loopback));
        _listener = new TcpListener(loopback ?? IPAddress.Loopback, 0);
        _listener.Start();
        _ = AcceptAsync(serve);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    private async Task AcceptAsync(Func<Socket, CancellationToken, Task> serve)
    {
        try
        {
            while (true)
            {
                var socket = await _listener.AcceptSocketAsync(_stop.Token);
                lock (_accepted) _accepted.Add(socket);
                _ = Task.Run(async () =>
                {
                    try { await serve(socket, _stop.Token); }
                    catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException) { }
                });
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException) { }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        lock (_accepted) foreach (var s in _accepted) s.Dispose();
    }

    /// <summary>Echoes every byte back until the client finishes, then finishes too.</summary>
    public static Peer Echo() => new(async (socket, stop) =>
    {
        var buffer = new byte[64 * 1024];
        int read;
        while ((read = await socket.ReceiveAsync(buffer, SocketFlags.None, stop)) > 0)
            await socket.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, stop);
        socket.Shutdown(SocketShutdown.Send);
    });

    /// <summary>Says <c>hello from peer\n</c> and closes.</summary>
    public static Peer Greeter() => new(async (socket, stop) =>
    {
        await socket.SendAsync("hello from peer\n"u8.ToArray(), SocketFlags.None, stop);
        socket.Shutdown(SocketShutdown.Both);
        socket.Close();
    });

    /// <summary>Sends <paramref name="count"/> bytes of <see cref="Pattern"/>, then closes.</summary>
    public static Peer Source(long count) => new(async (socket, stop) =>
    {
        var buffer = new byte[64 * 1024];
        for (long sent = 0; sent < count;)
        {
            var n = (int)Math.Min(buffer.Length, count - sent);
            Pattern(sent, buffer.AsSpan(0, n));
            await socket.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, stop);
            sent += n;
        }
        socket.Shutdown(SocketShutdown.Both);
        socket.Close();
    });

    /// <summary>Reads everything and reports its length and SHA-256 once the client finishes or goes (and its arrival, to <paramref name="accepted"/>).</summary>
    public static Peer Sink(TaskCompletionSource<(long Length, string Sha256)> received, TaskCompletionSource? accepted = null) => new(async (socket, stop) =>
    {
        accepted?.TrySetResult();
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[64 * 1024];
        long total = 0;
        try
        {
            int read;
            while ((read = await socket.ReceiveAsync(buffer, SocketFlags.None, stop)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                total += read;
            }
        }
        finally
        {
            received.TrySetResult((total, Convert.ToHexString(hash.GetHashAndReset())));
        }
    });

    /// <summary>Accepts, then resets the connection (RST) as soon as it reads anything.</summary>
    public static Peer Resetter() => new(async (socket, stop) =>
    {
        var buffer = new byte[1024];
        await socket.ReceiveAsync(buffer, SocketFlags.None, stop);
        socket.LingerState = new LingerOption(true, 0);
        socket.Close();
    });

    /// <summary>The SHA-256 (hex) of the first <paramref name="count"/> bytes of <see cref="Pattern"/>.</summary>
    public static string PatternSha256(long count)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[64 * 1024];
        for (long at = 0; at < count; at += buffer.Length)
        {
            var n = (int)Math.Min(buffer.Length, count - at);
            Pattern(at, buffer.AsSpan(0, n));
            hash.AppendData(buffer, 0, n);
        }
        return Convert.ToHexString(hash.GetHashAndReset());
    }

    /// <summary>Deterministic bytes for a stream position: a test can check any chunk without keeping the stream.</summary>
    public static void Pattern(long offset, Span<byte> into)
    {
        for (var i = 0; i < into.Length; i++)
        {
            var x = (ulong)(offset + i);
            into[i] = (byte)((x * 0x9E3779B97F4A7C15UL) >> 56 ^ x);
        }
    }
}

/// <summary>A peer that accepts every connection and holds it (reads nothing), counting them: how a test shows what was never dialled.</summary>
public sealed class CountingPeer : IDisposable
{
    private readonly Peer _peer;
    private int _accepted;

    public CountingPeer() => _peer = new Peer(async (_, stop) =>
    {
        Interlocked.Increment(ref _accepted);
        await Task.Delay(Timeout.Infinite, stop);
    });

    public int Port => _peer.Port;

    /// <summary>Connections accepted so far.</summary>
    public int Accepted => Volatile.Read(ref _accepted);

    public void Dispose() => _peer.Dispose();
}

/// <summary>A loopback port where nothing listens: bound but not listening, so connects are refused.</summary>
public sealed class RefusedPort : IDisposable
{
    private readonly Socket _socket = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

    public RefusedPort() => _socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));

    public int Port => ((IPEndPoint)_socket.LocalEndPoint!).Port;

    public void Dispose() => _socket.Dispose();
}

/// <summary>
/// A loopback port whose accept queue is full: the kernel drops further SYNs, so a connect to it
/// neither succeeds nor fails until the connecting side gives up.
/// </summary>
public sealed class UnansweredPort : IDisposable
{
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly List<Socket> _fillers = [];

    public UnansweredPort()
    {
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(0);
        // Fill the accept queue (never accepted) until a connect no longer completes at once.
        for (var i = 0; i < 16; i++)
        {
            var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            _fillers.Add(filler);
            if (!filler.ConnectAsync(_listener.LocalEndPoint!).Wait(TimeSpan.FromMilliseconds(500))) return;
        }
        throw new InvalidOperationException("the kernel kept accepting connections: cannot make an unanswered port");
    }

    public int Port => ((IPEndPoint)_listener.LocalEndPoint!).Port;

    public void Dispose()
    {
        foreach (var filler in _fillers) filler.Dispose();
        _listener.Dispose();
    }
}
