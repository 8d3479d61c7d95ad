using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.FSharp.Collections;
using Ws2s.Protocol;

namespace Ws2s.Host.Sessions;

/// <summary>
/// One generation of a session's TCP connection: its resolve, dial, connect timer, reader and writer.
/// Everything it learns goes back to the session as an <see cref="Input"/> tagged with its generation;
/// disposing it cancels all of that, so nothing of it is heard again.
/// </summary>
internal sealed class Connection(long generation, ChannelWriter<Input> inputs) : IDisposable
{
    /// <summary>The most a single read takes from the peer: one <c>recv data</c> message.</summary>
    public const int ReadChunkBytes = 64 * 1024;

    private readonly CancellationTokenSource _cancel = new();
    private Socket? _socket;

    public long Generation => generation;

    public void StartResolve(string host) => _ = ResolveAsync(host);

    public void StartDial(IPEndPoint endpoint) => _ = DialAsync(endpoint);

    public void StartTimer(int seconds) => _ = TimerAsync(seconds);

    public void StartWrite(ReadOnlyMemory<byte> bytes) => _ = WriteAsync(bytes);

    /// <summary>Sends FIN; reading goes on until the peer closes.</summary>
    public void ShutdownSend()
    {
        try
        {
            _socket?.Shutdown(SocketShutdown.Send);
        }
        catch (SocketException)
        {
            // Already broken: the reader reports it.
        }
    }

    private async Task ResolveAsync(string host)
    {
        Input outcome;
        try
        {
            var addresses = await Dns.GetHostAddressesAsync(host, _cancel.Token);
            outcome = Input.NewResolved(generation, ListModule.OfArray(addresses));
        }
        catch (SocketException)
        {
            outcome = Input.NewResolveFailed(generation);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        await PostAsync(outcome);
    }

    private async Task DialAsync(IPEndPoint endpoint)
    {
        _socket?.Dispose();
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        _socket = socket;
        try
        {
            await socket.ConnectAsync(endpoint, _cancel.Token);
        }
        catch (SocketException e)
        {
            await PostAsync(Input.NewDialFailedWith(generation, DialErrorOf(e.SocketErrorCode)));
            return;
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            return;
        }
        await PostAsync(Input.NewDialled(generation));
        _ = ReadAsync(socket);
    }

    /// <summary>
    /// Reads until the peer finishes. Waits with a zero-byte read so an idle connection pins no buffer,
    /// then takes what is there into a pooled buffer that the session returns once it has relayed it.
    /// The bounded input channel makes this wait while the client is slow: TCP flow control does the rest.
    /// </summary>
    private async Task ReadAsync(Socket socket)
    {
        try
        {
            while (true)
            {
                await socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None, _cancel.Token);
                var buffer = ArrayPool<byte>.Shared.Rent(ReadChunkBytes);
                int read;
                try
                {
                    read = await socket.ReceiveAsync(buffer.AsMemory(0, ReadChunkBytes), SocketFlags.None, _cancel.Token);
                }
                catch
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    throw;
                }
                if (read == 0)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    await PostAsync(Input.NewPeerFinished(generation));
                    return;
                }
                if (!await PostAsync(Input.NewReceived(generation, new ReadOnlyMemory<byte>(buffer, 0, read))))
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    return;
                }
            }
        }
        catch (SocketException e)
        {
            await PostAsync(Input.NewSocketFailed(generation, Words(e.SocketErrorCode)));
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    private async Task WriteAsync(ReadOnlyMemory<byte> bytes)
    {
        var socket = _socket;
        if (socket is null) return;
        try
        {
            while (!bytes.IsEmpty)
            {
                var sent = await socket.SendAsync(bytes, SocketFlags.None, _cancel.Token);
                bytes = bytes[sent..];
            }
        }
        catch (SocketException e)
        {
            await PostAsync(Input.NewSocketFailed(generation, Words(e.SocketErrorCode)));
            return;
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            return;
        }
        await PostAsync(Input.NewWriteCompleted(generation));
    }

    private async Task TimerAsync(int seconds)
    {
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(seconds), _cancel.Token);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        await PostAsync(Input.NewConnectTimerFired(generation));
    }

    /// <summary>Hands an input to the session; false once this connection or the session is finished.</summary>
    private async ValueTask<bool> PostAsync(Input input)
    {
        try
        {
            await inputs.WriteAsync(input, _cancel.Token);
            return true;
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        _cancel.Cancel();
        _socket?.Dispose();
    }

    private static DialError DialErrorOf(SocketError error) => error switch
    {
        SocketError.ConnectionRefused => DialError.Refused,
        SocketError.NetworkUnreachable => DialError.NetworkUnreachable,
        SocketError.HostUnreachable => DialError.HostUnreachable,
        _ => DialError.NewDialFailed("connect failed: " + Words(error)),
    };

    /// <summary>A socket error in plain words: <c>ConnectionReset</c> → "connection reset".</summary>
    internal static string Words(SocketError error)
    {
        var name = error.ToString();
        var words = new System.Text.StringBuilder(name.Length + 4);
        foreach (var c in name)
        {
            if (char.IsUpper(c) && words.Length > 0) words.Append(' ');
            words.Append(char.ToLowerInvariant(c));
        }
        return words.ToString();
    }
}
