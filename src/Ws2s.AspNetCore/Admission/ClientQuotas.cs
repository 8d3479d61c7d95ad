using System.Collections.Concurrent;
using System.Net;

namespace Ws2s.AspNetCore.Admission;

/// <summary>Counts what clients hold open (sessions; or peer connections), in all and per client address, against the configured limits.</summary>
/// <param name="counted">What is counted, in the refusals' words.</param>
internal sealed class ClientQuotas(string counted = "sessions")
{
    private readonly ConcurrentDictionary<IPAddress, int> _perClient = new();
    private int _total;

    /// <summary>
    /// A lease on one session slot, or null (with the reason) when a limit is reached. The limits are the
    /// configuration's in force (a reload changes them for sessions that open from then on; the open ones keep their slots).
    /// </summary>
    public IDisposable? TryEnter(IPAddress client, int maxSessions, int maxPerClient, out string? refusal)
    {
        client = ClientAddress.Normal(client);
        if (Interlocked.Increment(ref _total) > maxSessions)
        {
            Interlocked.Decrement(ref _total);
            refusal = $"the server has its maximum of {maxSessions} {counted}";
            return null;
        }
        if (_perClient.AddOrUpdate(client, 1, (_, n) => n + 1) > maxPerClient)
        {
            Leave(client);
            refusal = $"{client} has its maximum of {maxPerClient} {counted}";
            return null;
        }
        refusal = null;
        return new Lease(this, client);
    }

    private void Leave(IPAddress client)
    {
        Interlocked.Decrement(ref _total);
        // Remove the entry when it drops to zero, without racing a concurrent increment.
        while (true)
        {
            var count = _perClient[client];
            if (count == 1 ? _perClient.TryRemove(KeyValuePair.Create(client, 1)) : _perClient.TryUpdate(client, count - 1, count)) return;
        }
    }

    private sealed class Lease(ClientQuotas limits, IPAddress client) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0) limits.Leave(client);
        }
    }
}
