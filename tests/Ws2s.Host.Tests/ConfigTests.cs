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
            // The examples' tokens file lives in /etc; point it at one here.
            var tokens = Path.Combine(directory, "tokens");
            await File.WriteAllTextAsync(tokens, "# one token per line\nexample-token\n");
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

    /// <summary>Attack (issue 10, 7): token settings that look like protection but admit everyone.</summary>
    [Theory]
    [InlineData("""{"tokens":[""]}""", null, "tokens[0] is empty")]
    [InlineData("""{"tokens":["  "]}""", null, "tokens[0] is empty")]
    [InlineData("""{"tokens":["good",""]}""", null, "tokens[1] is empty")]
    [InlineData("""{"tokensFile":"TOKENS"}""", "# only a comment\n\n   \n# another\n", "holds no token")]
    [InlineData("""{"tokensFile":"TOKENS"}""", "", "holds no token")]
    public void Token_settings_that_would_admit_everyone_are_a_configuration_error(string config, string? file, string named)
    {
        var directory = Directory.CreateTempSubdirectory("ws2s-tokens-").FullName;
        try
        {
            var tokens = Path.Combine(directory, "tokens");
            if (file is not null) File.WriteAllText(tokens, file);
            var path = Path.Combine(directory, "config.json");
            File.WriteAllText(path, config.Replace("TOKENS", tokens));
            var error = Assert.Throws<ConfigException>(() => Ws2sServer.Build(["--config", path]));
            Assert.Contains(named, error.Message);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
