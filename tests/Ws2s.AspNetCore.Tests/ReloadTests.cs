using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Ws2s.AspNetCore.Admission;
using Ws2s.AspNetCore.Configuration;
using Ws2s.AspNetCore.Telemetry;

namespace Ws2s.AspNetCore.Tests;

/// <summary>
/// A reload reaches an embedding app whole (one snapshot swapped from IOptionsMonitor), never half-way, and a
/// configuration with problems is refused with the previous one left in force.
/// </summary>
public sealed class ReloadTests
{
    private static string Allowing(int port) => $$$"""{"allowConnectToServerLocal":true,"destinations":{"allow":["127.0.0.1:{{{port}}}"]}}""";

    [Fact]
    public async Task A_changed_section_applies_to_new_sessions_without_a_restart()
    {
        using var echo = Peer.Echo();
        await using var app = await EmbeddedApp.StartAsync(Allowing(echo.Port));
        await using (var before = await app.OpenAsync())
            await before.EchoThroughAsync(echo.Port, "before");

        await app.ReloadAsync($$$"""{"allowConnectToServerLocal":true,"destinations":{"deny":["127.0.0.1:{{{echo.Port}}}"]}}""");
        await using var after = await app.OpenAsync();
        await after.SendAsync(new { command = "connect", host = "127.0.0.1", port = echo.Port });
        Assert.Equal(4, (int)(await after.ReceiveJsonAsync())["code"]!);
    }

    /// <summary>
    /// Attack: a typo saved into a watched appsettings.json (a rule nobody reads) must not become the policy; nor may
    /// it be lost silently in a change callback while the app runs on as if it had been taken.
    /// </summary>
    [Theory]
    [InlineData("""{"allowConnectToServerLocal":true,"destinatons":{"allow":["127.0.0.1"]}}""", "unknown key 'destinatons'")]
    [InlineData("""{"allowConnectToServerLocal":true,"destinations":{"allow":["127.0.0.1:99999"]}}""", "destinations.allow[0]")]
    [InlineData("""{"allowConnectToServerLocal":true,"limits":{"maxSessions":"lots"}}""", "limits.maxSessions 'lots'")]
    public async Task A_reload_with_a_problem_is_refused_naming_it_and_the_previous_options_stay(string next, string named)
    {
        using var echo = Peer.Echo();
        await using var app = await EmbeddedApp.StartAsync(Allowing(echo.Port));
        await app.ReloadAsync(next);
        var refusal = await app.Logs.WaitForAsync(l => l.Contains("ws2s options reload refused"));
        Assert.Contains(named, refusal);
        Assert.Contains("the previous options stay in force", refusal);
        await using var session = await app.OpenAsync();
        await session.EchoThroughAsync(echo.Port, "the old rules hold");
    }

    /// <summary>A token added by a reload is cleaned from every log line from the moment it admits anyone.</summary>
    [Fact]
    public async Task A_token_added_by_a_reload_never_reaches_the_logs()
    {
        await using var app = await EmbeddedApp.StartAsync("""{"tokens":["first-secret-token"]}""");
        await app.ReloadAsync("""{"tokens":["second-secret-token"]}""");
        await app.Logs.WaitForAsync(l => l.Contains("ws2s options reloaded"));
        var log = app.Services.GetRequiredService<Microsoft.Extensions.Logging.ILoggerFactory>().CreateLogger("test");
        log.LogSecret("second-secret-token");
        var line = await app.Logs.WaitForAsync(l => l.Contains("the secret is"));
        Assert.DoesNotContain("second-secret-token", line);
    }

    /// <summary>
    /// Attack (issue 20, 16): settings computed from one configuration were written back after a reload had replaced
    /// it, leaving the old rules in force for new sessions. A reader racing every reload must never see stale settings.
    /// </summary>
    [Fact]
    public async Task Settings_computed_during_a_reload_never_outlive_it()
    {
        // Many deny rules make computing the settings take a while (a long list is an operator's right).
        List<string> deny = [.. Enumerable.Range(1, 400).Select(n => $"10.{n / 250}.{n % 250}.0/24")];
        Ws2sOptions Options(int port) => new() { Destinations = new() { Allow = [$"127.0.0.1:{port}"], Deny = deny } };
        var monitor = new Monitor(Options(1));
        using var live = new LiveConfiguration(monitor, new StartValidation(), new RedactedSecrets([]), TimeProvider.System, NullLogger<LiveConfiguration>.Instance);
        using var admission = new AdmissionPolicy(live, new NoServer());
        var parse = System.Diagnostics.Stopwatch.StartNew();
        _ = admission.Settings;
        var window = parse.Elapsed.TotalMicroseconds;
        for (var i = 2; i < 400; i++)
        {
            var go = new ManualResetEventSlim();
            var reader = Task.Run(() =>
            {
                go.Wait();
                return admission.Settings;
            });
            go.Set();
            // Somewhere inside the reader's computation (it takes tens of microseconds)…
            var until = System.Diagnostics.Stopwatch.GetTimestamp() + (long)(System.Diagnostics.Stopwatch.Frequency * window * (i % 40) / 40 / 1_000_000);
            while (System.Diagnostics.Stopwatch.GetTimestamp() < until) Thread.SpinWait(1);
            // …a reload, as the options monitor reports one.
            monitor.Change(Options(i));
            await reader;
            var allowed = admission.Settings.Policy.Allow.Select(r => r.Text).ToList();
            Assert.True(allowed.SequenceEqual([$"127.0.0.1:{i}"]), $"after reload {i} new sessions get {string.Join(", ", allowed)}");
        }
    }

    /// <summary>An options monitor whose changes the test makes.</summary>
    private sealed class Monitor(Ws2sOptions current) : IOptionsMonitor<Ws2sOptions>
    {
        private readonly List<Action<Ws2sOptions, string?>> _listeners = [];

        public Ws2sOptions CurrentValue { get; private set; } = current;

        public Ws2sOptions Get(string? name) => CurrentValue;

        public void Change(Ws2sOptions next)
        {
            CurrentValue = next;
            foreach (var listener in _listeners) listener(next, Options.DefaultName);
        }

        public IDisposable OnChange(Action<Ws2sOptions, string?> listener)
        {
            _listeners.Add(listener);
            return new Unsubscribe(() => _listeners.Remove(listener));
        }

        private sealed class Unsubscribe(Action undo) : IDisposable
        {
            public void Dispose() => undo();
        }
    }

    private sealed class NoServer : IServer
    {
        public IFeatureCollection Features { get; } = new FeatureCollection();

        public Task StartAsync<TContext>(Microsoft.AspNetCore.Hosting.Server.IHttpApplication<TContext> application, CancellationToken cancellationToken) where TContext : notnull =>
            Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public void Dispose() { }
    }
}

internal static partial class SecretLog
{
    [Microsoft.Extensions.Logging.LoggerMessage(Level = Microsoft.Extensions.Logging.LogLevel.Information, Message = "the secret is {Secret}")]
    public static partial void LogSecret(this Microsoft.Extensions.Logging.ILogger log, string secret);
}
