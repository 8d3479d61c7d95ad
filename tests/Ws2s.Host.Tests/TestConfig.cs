using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Ws2s.AspNetCore.Configuration;
using Ws2s.Host.Configuration;

namespace Ws2s.Host.Tests;

/// <summary>
/// A ws2sd configuration file for a test, built from the options types themselves: a key that nothing reads cannot
/// be written, and a renamed option breaks the build here instead of leaving a dead key in a test. Written as a user
/// writes one: only what differs from the defaults, and ws2sd listening on 127.0.0.1 on a port the system picks.
/// </summary>
public sealed class TestConfig
{
    private static readonly JsonSerializerOptions Written = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter() },
        // What the configuration binds: settable properties only (not the helpers computed from them).
        TypeInfoResolver = new DefaultJsonTypeInfoResolver
        {
            Modifiers = { info => { foreach (var p in info.Properties.Where(p => p.Set is null && !IsCollection(p.PropertyType)).ToList()) info.Properties.Remove(p); } },
        },
    };

    private readonly ServerOptions _server = new() { Listen = { Port = 0 } };
    private readonly Ws2sOptions _options = new();
    private readonly JsonObject _logLevels = [];

    /// <summary>ws2sd's defaults (nothing reaches this machine), listening on 127.0.0.1, a port the system picks.</summary>
    public static TestConfig Defaults => new();

    /// <summary>Sessions may dial this machine: the tests' peers listen on loopback.</summary>
    public static TestConfig Loopback => Defaults.With(o => o.AllowConnectToServerLocal = true);

    /// <summary>Changes what the library reads (destinations, limits, tokens, TLS…).</summary>
    public TestConfig With(Action<Ws2sOptions> change)
    {
        change(_options);
        return this;
    }

    /// <summary>Changes what only ws2sd reads (its listeners, management port, shutdown timeout).</summary>
    public TestConfig Serving(Action<ServerOptions> change)
    {
        change(_server);
        return this;
    }

    /// <summary>Logs <paramref name="category"/> at <paramref name="level"/> (the file's <c>Logging</c> section, which ws2sd hands to .NET logging).</summary>
    public TestConfig Logging(string category, string level)
    {
        _logLevels[category] = level;
        return this;
    }

    /// <summary>The file's text: every option that differs from its default, in the keys a user writes.</summary>
    public string Json
    {
        get
        {
            var file = Differences(Node(_server), Node(new ServerOptions()));
            foreach (var (key, value) in Differences(Node(_options), Node(new Ws2sOptions()))) file[key] = value?.DeepClone();
            if (_logLevels.Count > 0) file["Logging"] = new JsonObject { ["LogLevel"] = _logLevels.DeepClone() };
            return file.ToJsonString();
        }
    }

    public override string ToString() => Json;

    public static implicit operator string(TestConfig config) => config.Json;

    private static JsonObject Node(object options) => JsonSerializer.SerializeToNode(options, options.GetType(), Written)!.AsObject();

    /// <summary>The members of <paramref name="configured"/> that differ from <paramref name="defaults"/> (objects compared member by member).</summary>
    private static JsonObject Differences(JsonObject configured, JsonObject defaults)
    {
        var differences = new JsonObject();
        foreach (var (key, value) in configured)
        {
            var standard = defaults[key];
            if (value is JsonObject inner && standard is JsonObject innerDefault)
            {
                var changed = Differences(inner, innerDefault);
                if (changed.Count > 0) differences[key] = changed;
            }
            else if (!JsonNode.DeepEquals(value, standard))
            {
                differences[key] = value?.DeepClone();
            }
        }
        return differences;
    }

    private static bool IsCollection(Type type) => type != typeof(string) && typeof(System.Collections.IEnumerable).IsAssignableFrom(type);
}
