using System.Net;
using Microsoft.AspNetCore.Connections;

namespace Ws2s.AspNetCore.Admission;

/// <summary>
/// Kestrel's transport with the <see cref="ConnectionGate"/> in its accept loop, for the listeners that use the gate
/// (<see cref="Ws2sListenOptionsExtensions.UseWs2sGate"/>): a connection the gate does not admit is closed before the
/// next one is accepted, so however fast connections arrive the process holds at most <c>limits.maxConnections</c>
/// of them (plus the one being closed). Other listeners pass through untouched. <c>AddWs2s</c> wraps the transports
/// registered before it (Kestrel's sockets, in a <c>WebApplication</c>); where none was, the gate still decides,
/// in the connection middleware, just after the accept.
/// </summary>
internal sealed class GatedTransport(IConnectionListenerFactory inner, ConnectionGate gate, GatedEndpoints gated)
    : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    /// <summary>Marks a connection the accept loop admitted (the middleware does not admit it again).</summary>
    internal sealed class Admitted
    {
        public static readonly Admitted Instance = new();
    }

    public async ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        var listener = await inner.BindAsync(endpoint, cancellationToken);
        return gated.Contains(endpoint) ? new Listener(listener, gate) : listener;
    }

    public bool CanBind(EndPoint endpoint) => inner is not IConnectionListenerFactorySelector selector || selector.CanBind(endpoint);

    private sealed class Listener(IConnectionListener inner, ConnectionGate gate) : IConnectionListener
    {
        public EndPoint EndPoint => inner.EndPoint;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            while (true)
            {
                var connection = await inner.AcceptAsync(cancellationToken);
                if (connection is null) return null;
                bool admitted;
                try
                {
                    admitted = await gate.AdmitAsync(cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    await connection.DisposeAsync();
                    throw;
                }
                if (admitted)
                {
                    connection.Features.Set(Admitted.Instance);
                    return connection;
                }
                connection.Abort(new ConnectionAbortedException("ws2s: connection limit reached"));
                await connection.DisposeAsync();
            }
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default) => inner.UnbindAsync(cancellationToken);

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}

/// <summary>The endpoints whose listeners use the connection gate (Kestrel binds each with the very object it was configured with).</summary>
internal sealed class GatedEndpoints
{
    private readonly HashSet<EndPoint> _endpoints = new(ReferenceEqualityComparer.Instance);
    private readonly Lock _gate = new();

    public void Add(EndPoint endpoint)
    {
        lock (_gate) _endpoints.Add(endpoint);
    }

    public bool Contains(EndPoint endpoint)
    {
        lock (_gate) return _endpoints.Contains(endpoint);
    }
}
