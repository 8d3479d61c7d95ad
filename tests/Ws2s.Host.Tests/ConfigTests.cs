using System.Text.RegularExpressions;
using Ws2s.Host.Configuration;

namespace Ws2s.Host.Tests;

/// <summary>The configuration examples people will copy must be valid.</summary>
public sealed partial class ConfigTests
{
    [GeneratedRegex("```json\\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex JsonBlock();

    public static TheoryData<string> ReadmeConfigs()
    {
        var readme = File.ReadAllText(Path.Combine(Repository.Root, "README.md"));
        var start = readme.IndexOf("## Configuration", StringComparison.Ordinal);
        var end = readme.IndexOf("\n## ", start + 1, StringComparison.Ordinal);
        var section = readme[start..(end < 0 ? readme.Length : end)];
        var data = new TheoryData<string>();
        foreach (Match m in JsonBlock().Matches(section)) data.Add(m.Groups[1].Value);
        return data;
    }

    [Theory]
    [MemberData(nameof(ReadmeConfigs))]
    public async Task Every_configuration_example_in_the_README_is_accepted(string json)
    {
        var directory = Directory.CreateTempSubdirectory("ws2s-readme-").FullName;
        try
        {
            // The examples' tokens file lives in /etc; point it at an empty one here.
            var tokens = Path.Combine(directory, "tokens");
            await File.WriteAllTextAsync(tokens, "");
            var path = Path.Combine(directory, "config.json");
            await File.WriteAllTextAsync(path, json.Replace("/etc/ws2s/tokens", tokens));
            await using var app = Ws2sServer.Build(["--config", path]);
        }
        catch (ConfigException e)
        {
            Assert.Fail($"README example rejected: {e.Message}\n{json}");
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
