using System.Net;
using System.Net.Sockets;
using Renci.SshNet;
using Renci.SshNet.Common;
using Ws2s.AspNetCore.Ssh;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Connectors;

/// <summary>
/// The SSH half of a tunnel: a hold on an SSH login to the server (shared with the client's other
/// tunnels over the same login) and a forward from a loopback port to host:port there, guarded by a
/// <see cref="ForwardDoor"/> (SSH.NET reaches direct-tcpip channels only through such a listener).
/// The session then dials <see cref="Endpoint"/> like any peer. Disposing it stops the forward and
/// lets the SSH login close once unused.
/// </summary>
internal sealed class SshTunnel : IDisposable
{
    private readonly SshLogins.Lease _lease;
    private readonly ForwardedPortLocal _forward;
    private int _disposed;

    private SshTunnel(SshLogins.Lease lease, ForwardedPortLocal forward, ForwardDoor door)
    {
        _lease = lease;
        _forward = forward;
        Door = door;
    }

    /// <summary>Where to dial: the forward's loopback port.</summary>
    public IPEndPoint Endpoint => new(IPAddress.Loopback, (int)_forward.BoundPort);

    /// <summary>Admits the session's own connection to <see cref="Endpoint"/> only.</summary>
    public ForwardDoor Door { get; }

    /// <summary>
    /// Logs in (or joins the open SSH login) and starts the forward. <paramref name="channelRefused"/>
    /// is called if the SSH server refuses the channel (SSH.NET says so only once the forward is used).
    /// Throws what <see cref="SshLogins.AcquireAsync"/> and SSH.NET throw; <see cref="Failure"/> words them.
    /// </summary>
    public static async Task<SshTunnel> OpenAsync(SshLogins logins, IPAddress client, IPEndPoint server, SshLogin login,
        string host, Port port, Action channelRefused)
    {
        var lease = await logins.AcquireAsync(client, server, login);
        try
        {
            var forward = new ForwardedPortLocal("127.0.0.1", 0, host, (uint)port.Value);
            var door = new ForwardDoor();
            forward.RequestReceived += (_, e) => door.Admit(e.OriginatorHost, e.OriginatorPort);
            forward.Exception += (_, e) =>
            {
                if (e.Exception is not ForwardDoor.StrangerException) channelRefused();
            };
            lease.Client.AddForwardedPort(forward);
            forward.Start();
            return new SshTunnel(lease, forward, door);
        }
        catch
        {
            lease.Dispose();
            throw;
        }
    }

    /// <summary>The words for an SSH failure (code 6), or null if it is not one SSH failures are made of.</summary>
    public static string? Failure(Exception e, SshLogin login) => e switch
    {
        SshAuthenticationException => $"authentication failed for user {login.Username} (wrong password or key)",
        SshOperationTimeoutException => "the SSH server did not answer in time",
        SshLogins.RefusedException => e.Message,
        SshException or ProxyException => "the SSH login failed: " + e.Message,
        // The shared SSH login was closed by its last other tunnel as this one joined it.
        ObjectDisposedException or OperationCanceledException => "the SSH login closed while the tunnel opened; try again",
        _ => null,
    };

    /// <summary>Stops the forward (which waits for its channel: off the caller's thread), then releases the SSH login.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _ = Task.Run(() =>
        {
            try
            {
                _forward.Dispose();
                _lease.Client.RemoveForwardedPort(_forward);
            }
            catch (Exception e) when (e is SshException or ObjectDisposedException or SocketException or InvalidOperationException)
            {
                // The SSH login is gone already.
            }
            _lease.Dispose();
        });
    }
}
