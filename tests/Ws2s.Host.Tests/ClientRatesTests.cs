using System.Net;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Time.Testing;
using Ws2s.AspNetCore.Admission;

namespace Ws2s.Host.Tests;

/// <summary>The per-client token buckets (UDP datagrams and bytes, name lookups), on a clock the test moves.</summary>
public sealed class ClientRatesTests
{
    private static readonly IPAddress Client = IPAddress.Parse("127.0.0.9");

    [Fact]
    public void A_client_takes_its_rate_in_a_second_and_then_as_it_refills()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var rates = new ClientRates(clock);
        for (var i = 0; i < 5; i++) Assert.True(rates.Take(Client, (1, 5)));
        Assert.False(rates.Take(Client, (1, 5)));
        Assert.True(rates.Take(IPAddress.Parse("127.0.0.10"), (1, 5))); // another client has its own
        clock.Advance(TimeSpan.FromMilliseconds(200));
        Assert.True(rates.Take(Client, (1, 5)));
        Assert.False(rates.Take(Client, (1, 5)));
    }

    [Fact]
    public void What_a_limit_remembers_of_an_address_is_forgotten_a_minute_after_its_last_use_and_only_then()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var table = new PerClientAddress<StrongBox<long>>(clock, entry => entry.Value);
        StrongBox<long> Use(IPAddress client)
        {
            var entry = table.Get(client, clock.GetTimestamp(), () => new StrongBox<long>());
            entry.Value = clock.GetTimestamp();
            return entry;
        }
        var first = Use(Client);
        clock.Advance(TimeSpan.FromSeconds(59));
        var recent = Use(IPAddress.Parse("127.0.0.10"));
        clock.Advance(TimeSpan.FromSeconds(2)); // 61 s after the first's use, 2 s after the other's
        Assert.NotSame(first, table.Get(Client, clock.GetTimestamp(), () => new StrongBox<long>()));
        Assert.Same(recent, table.Get(IPAddress.Parse("127.0.0.10"), clock.GetTimestamp(), () => new StrongBox<long>()));
    }

    [Fact]
    public void Over_either_measure_nothing_is_taken_of_the_other()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var rates = new ClientRates(clock);
        Assert.False(rates.Take(Client, (1, 10), (2000, 1000))); // one datagram over the bytes a second
        for (var i = 0; i < 10; i++) Assert.True(rates.Take(Client, (1, 10), (100, 1000)));
    }

    [Fact]
    public void Unlimited_use_runs_up_no_debt_that_a_limit_set_later_would_collect()
    {
        // Review: with the limit at 0 the balance went on falling, so after a reload to 50 a client that had made 1,000
        // lookups was refused for about 20 seconds.
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var rates = new ClientRates(clock);
        for (var i = 0; i < 1000; i++) Assert.True(rates.Take(Client, (1, 0)));
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.True(rates.Take(Client, (1, 50)));
    }
}
