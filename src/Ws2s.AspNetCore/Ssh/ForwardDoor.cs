namespace Ws2s.AspNetCore.Ssh;

/// <summary>
/// Who may use a tunnel's local forward. SSH.NET reaches a direct-tcpip channel only through a
/// listener on 127.0.0.1 (ForwardedPortLocal), which any local process could connect to and ride
/// the client's SSH login. The door lets exactly one connection through: the session's own, known
/// by the source port its socket was bound to before dialling. Everyone else is turned away
/// (<see cref="StrangerException"/> from the forward's RequestReceived closes their socket).
/// </summary>
internal sealed class ForwardDoor
{
    private int _expectedPort;
    private int _admitted;

    /// <summary>Thrown at a connection that is not the session's own; the forward closes it and reports this, which is not a failure of the tunnel.</summary>
    public sealed class StrangerException() : Exception("a connection to the tunnel's local port that is not the session's own was refused");

    /// <summary>The session's socket is bound to 127.0.0.1:<paramref name="port"/> and about to dial.</summary>
    public void Expect(int port) => Volatile.Write(ref _expectedPort, port);

    /// <summary>Called for each connection the forward accepts; throws unless it is the expected one, the first time.</summary>
    public void Admit(string host, uint port)
    {
        var expected = Volatile.Read(ref _expectedPort);
        if (expected == 0 || host != "127.0.0.1" || port != (uint)expected || Interlocked.Exchange(ref _admitted, 1) != 0)
            throw new StrangerException();
    }
}
