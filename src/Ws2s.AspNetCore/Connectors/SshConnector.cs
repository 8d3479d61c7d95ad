using System.Net;
using System.Net.Sockets;
using Ws2s.AspNetCore.Ssh;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Connectors;

/// <summary>
/// Connects an SSH hop: logs in (or joins the client's open login to that server), opens the tunnel to
/// the target, and connects to the tunnel's door, which admits this socket only. The peer stream holds
/// the tunnel: disposing it closes both.
/// </summary>
internal sealed class SshConnector(SshLogins logins) : IConnector
{
    public string Scheme => "ssh";

    public async Task<PeerStream> ConnectAsync(Hop hop, PeerContext context, CancellationToken cancel)
    {
        var ssh = (Hop.SshHop)hop;
        var target = $"{ssh.Host.Canonical}:{ssh.Port.Value}";
        SshTunnel tunnel;
        try
        {
            tunnel = await SshTunnel.OpenAsync(logins, context.Client, ssh.Server, ssh.Login, ssh.Host.Canonical, ssh.Port,
                () => context.Failed($"the SSH server refused the channel to {target}"));
        }
        catch (Exception e) when (e is not SocketException && SshTunnel.Failure(e, ssh.Login) is { } reason)
        {
            // Failures come in plain words, never with secrets.
            throw new DialFailedException(DialError.NewTunnelFailed(reason));
        }
        Socket? socket = null;
        try
        {
            cancel.ThrowIfCancellationRequested(); // closed while logging in
            socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            // Bound first, so the door knows this socket by its source port.
            socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            tunnel.Door.Expect(((IPEndPoint)socket.LocalEndPoint!).Port);
            await socket.ConnectAsync(tunnel.Endpoint, cancel);
            return PeerStream.Of(socket, holds: tunnel);
        }
        catch
        {
            socket?.Dispose();
            tunnel.Dispose();
            throw;
        }
    }
}
