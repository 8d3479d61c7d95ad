using Microsoft.Extensions.Options;

namespace Ws2s.AspNetCore.Tests;

/// <summary>An embedding app's "Ws2s" section is checked at start: every problem named by its key, nothing served.</summary>
public sealed class OptionsTests
{
    [Theory]
    [InlineData("""{"destinations":{"allow":["10.0.0.0/33"]}}""", "destinations.allow[0]")]
    [InlineData("""{"origins":["app.example.com"]}""", "origins[0]")]
    [InlineData("""{"trustedProxies":["the balancer"]}""", "trustedProxies[0] 'the balancer' is not an IP address or network")]
    [InlineData("""{"limits":{"maxSessions":0}}""", "limits.maxSessions 0 must be between 1 and 1000000")]
    [InlineData("""{"tokens":[""]}""", "tokens[0] is empty")]
    [InlineData("""{"listen":{"port":1}}""", "unknown key 'listen'")] // ws2sd's key: an app's listeners are its own
    public async Task A_problem_in_the_section_stops_the_app_naming_its_key(string ws2s, string named)
    {
        var refused = await Assert.ThrowsAsync<OptionsValidationException>(async () => await EmbeddedApp.StartAsync(ws2s));
        Assert.Contains(named, refused.Message);
    }
}
