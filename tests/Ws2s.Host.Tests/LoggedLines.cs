using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Ws2s.Host.Tests;

/// <summary>Every line a server logs, at every level, with its category and exception: add it as an <see cref="ILoggerProvider"/>.</summary>
public sealed class LoggedLines : ILoggerProvider
{
    public ConcurrentQueue<string> All { get; } = new();

    /// <summary>The first line that is <paramref name="wanted"/>, once logged (within the tests' patience).</summary>
    public async Task<string> WaitForAsync(Func<string, bool> wanted)
    {
        using var patience = new CancellationTokenSource(WsClient.Patience);
        while (true)
        {
            if (All.FirstOrDefault(wanted) is { } line) return line;
            await Task.Delay(20, patience.Token); // looking at the lines again
        }
    }

    public ILogger CreateLogger(string categoryName) => new Category(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Category(LoggedLines lines, string name) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            lines.All.Enqueue($"{name}: {formatter(state, exception)} {exception}");
    }
}
