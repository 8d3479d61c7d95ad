using System.Net;
using Microsoft.AspNetCore.Connections;

namespace Ws2s.AspNetCore.Admission;

/// <summary>
/// Kestrel's transport with the <see cref="ConnectionGate"/> in its accept loop: a connection the gate
/// does not admit is closed before the next one is accepted, so however fast connections arrive the
/// process holds at most <c>limits.maxConnections</c> of them (plus the one being closed).
/// </summary>
public sealed class GatedTransport(IConnectionListenerFactory inner, ConnectionGate gate) : IConnectionListenerFactory
{
    public async ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default) =>
        new Listener(await inner.BindAsync(endpoint, cancellationToken), gate);

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
                if (admitted) return connection;
                connection.Abort(new ConnectionAbortedException("ws2s: connection limit reached"));
                await connection.DisposeAsync();
            }
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default) => inner.UnbindAsync(cancellationToken);

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
