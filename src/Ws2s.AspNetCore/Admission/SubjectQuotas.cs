using System.Collections.Concurrent;

namespace Ws2s.AspNetCore.Admission;

/// <summary>Sessions held per token subject (<c>sub</c>), for a token's <c>maxSessions</c>.</summary>
internal sealed class SubjectQuotas
{
    private readonly ConcurrentDictionary<string, int> _held = new(StringComparer.Ordinal);

    /// <summary>A lease on one more session of <paramref name="subject"/>, or null when it holds <paramref name="most"/> already.</summary>
    public IDisposable? TryEnter(string subject, int most)
    {
        while (true)
        {
            var held = _held.GetOrAdd(subject, 0);
            if (held >= most) return null;
            if (_held.TryUpdate(subject, held + 1, held)) return new Lease(this, subject);
        }
    }

    private void Leave(string subject)
    {
        while (true)
        {
            var held = _held[subject];
            if (held == 1 ? _held.TryRemove(new KeyValuePair<string, int>(subject, 1)) : _held.TryUpdate(subject, held - 1, held)) return;
        }
    }

    private sealed class Lease(SubjectQuotas quotas, string subject) : IDisposable
    {
        private int _left;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _left, 1) == 0) quotas.Leave(subject);
        }
    }
}
