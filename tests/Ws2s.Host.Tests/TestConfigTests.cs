using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using Ws2s.AspNetCore.Configuration;
using Ws2s.Host.Configuration;

namespace Ws2s.Host.Tests;

/// <summary>The tests' configuration builder writes what a user would write, and only keys ws2sd reads.</summary>
public sealed class TestConfigTests
{
    [Fact]
    public void The_defaults_are_a_listener_on_a_port_the_system_picks_and_nothing_else()
    {
        Assert.Equal("""{"listen":{"port":0}}""", TestConfig.Defaults.Json);
        Assert.Equal("""{"listen":{"port":0},"allowConnectToServerLocal":true}""", TestConfig.Loopback.Json);
    }

    [Fact]
    public void Every_key_it_writes_is_one_ws2sd_reads_and_binds_back_to_the_same_options()
    {
        var config = TestConfig.Loopback
            .Serving(s => s.Management = new() { Port = 0 })
            .With(o =>
            {
                o.Destinations.Allow = ["127.0.0.1:6379", "unix:/run/app.sock"];
                o.Limits.IdleTimeoutSeconds = 60;
                o.Tokens = ["t-1"];
                o.RawTargets = new() { ["vnc"] = "127.0.0.1:5901" };
                o.Ssh.KnownHosts = "/tmp/known_hosts";
                o.Tls.Required = ["db.example:5432"];
            });
        var root = new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(config.Json))).Build();
        Assert.Empty(ConfigFile.KeyProblems(root));
        var bound = root.Get<Ws2sOptions>()!;
        Assert.Equal(["127.0.0.1:6379", "unix:/run/app.sock"], bound.Destinations.Allow);
        Assert.Equal(60, bound.Limits.IdleTimeoutSeconds);
        Assert.Equal("127.0.0.1:5901", bound.RawTargets["vnc"]);
        Assert.Equal("/tmp/known_hosts", bound.Ssh.KnownHosts);
        Assert.Equal(0, root.Get<ServerOptions>()!.Management!.Port);
        // Only what differs from the defaults is written.
        Assert.Null(JsonNode.Parse(config.Json)!["limits"]!["connectTimeoutSeconds"]);
    }
}
