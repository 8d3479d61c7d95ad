using System.Collections.Concurrent;
using System.Threading.Channels;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Sessions;

/// <summary>
/// The sessions' ticks: one timer for the whole server that gives every session a Tick each second
/// (idle timeout, connect rate), instead of a timer per session. A tick that finds a session's input
/// channel full is dropped: that session is busy, so not idle; it only stretches the connect-rate window.
/// </summary>
internal sealed class Ticker(TimeProvider time) : IHostedService, IDisposable
{
    /// <summary>Where sessions read time and make timers (injected, so tests can control it).</summary>
    public TimeProvider Time => time;

    private readonly ConcurrentDictionary<ChannelWriter<Input>, byte> _sessions = new();
    private readonly PeriodicTimer _timer = new(TimeSpan.FromSeconds(1), time);
    private Task? _ticking;

    /// <summary>Ticks go to <paramref name="inputs"/> until the returned registration is disposed.</summary>
    public IDisposable Register(ChannelWriter<Input> inputs)
    {
        _sessions.TryAdd(inputs, 0);
        return new Registration(this, inputs);
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _ticking = TickAsync();
        return Task.CompletedTask;
    }

    private async Task TickAsync()
    {
        while (await _timer.WaitForNextTickAsync())
            foreach (var inputs in _sessions.Keys) inputs.TryWrite(Input.Tick);
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _timer.Dispose();
        return _ticking ?? Task.CompletedTask;
    }

    public void Dispose() => _timer.Dispose();

    private sealed class Registration(Ticker ticker, ChannelWriter<Input> inputs) : IDisposable
    {
        public void Dispose() => ticker._sessions.TryRemove(inputs, out _);
    }
}
