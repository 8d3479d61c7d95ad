using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;
using Ws2s.AspNetCore.Configuration;
using Ws2s.Host.Configuration;

namespace Ws2s.Host.Tests;

/// <summary>
/// Issue 21: the mistakes a person makes on day one — a misspelt key or command, a value of the wrong kind, a
/// broken edit before <c>ws2sd reload</c> — get an answer that says what is wrong, where, and what to do; and
/// the JSON logs are JSON on every line.
/// </summary>
public sealed partial class FirstContactTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("ws2s-first-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string Write(string json, string name = "config.json")
    {
        var path = Path.Combine(_directory, name);
        File.WriteAllText(path, json);
        return path;
    }

    private const string Listen = """{"listen":{"host":"127.0.0.1","port":0}""";

    /// <summary>Every key the options know, in the config's spelling, without the map entries (<c>rawTargets.*</c>, any name).</summary>
    public static IEnumerable<string> KnownKeys() => ConfigFile.KnownKeys().Where(k => !k.Contains('*', StringComparison.Ordinal));

    /// <summary>A JSON document that sets <paramref name="path"/> (<c>endpoints[].host</c>) to 1.</summary>
    private static string JsonSetting(IReadOnlyList<string> segments)
    {
        JsonNode node = JsonValue.Create(1);
        for (var i = segments.Count - 1; i >= 0; i--)
        {
            var list = segments[i].EndsWith("[]", StringComparison.Ordinal);
            if (list) node = new JsonArray(node);
            node = new JsonObject { [list ? segments[i][..^2] : segments[i]] = node };
        }
        return node.ToJsonString();
    }

    /// <summary>Misspellings of <paramref name="word"/> a hand makes: a letter dropped, two swapped, one doubled.</summary>
    private static IEnumerable<string> Misspellings(string word)
    {
        yield return word.Remove(word.Length / 2, 1);
        if (word.Length > 2) yield return word[..1] + word[2] + word[1] + word[3..];
        yield return word + word[^1];
    }

    private static List<string> Problems(string configPath, params string[] args)
    {
        var builder = new ConfigurationBuilder().AddJsonFile(configPath).AddCommandLine(args);
        return [.. ConfigFile.KeyProblems(builder.Build())];
    }

    /// <summary>Attack (issue 21, 1): a misspelt key is a rule nobody reads — "destinatons" left every local port open.</summary>
    [Fact]
    public void Every_misspelt_key_at_every_depth_is_refused_naming_the_key_and_the_nearest_known_one()
    {
        var known = KnownKeys().Select(k => k.Replace("[]", "", StringComparison.Ordinal)).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var cases = 0;
        foreach (var key in KnownKeys())
        {
            var segments = key.Split('.');
            for (var depth = 0; depth < segments.Length; depth++)
            {
                var name = segments[depth].TrimEnd('[', ']');
                foreach (var wrong in Misspellings(name))
                {
                    var spelled = segments.Select((s, i) => i == depth ? wrong + (s.EndsWith("[]", StringComparison.Ordinal) ? "[]" : "") : s).ToArray();
                    var siblingPath = string.Join(".", spelled.Take(depth + 1)).Replace("[]", "", StringComparison.Ordinal);
                    if (known.Contains(siblingPath) || ConfigFile.ProgramKeys.Contains(siblingPath, StringComparer.OrdinalIgnoreCase)) continue;
                    cases++;
                    // In a file…
                    var problems = Problems(Write(JsonSetting(spelled)));
                    var above = string.Concat(segments.Take(depth).Select(s => s.Replace("[]", "[0]", StringComparison.Ordinal) + "."));
                    var right = above + name;
                    Assert.True(problems.Any(p => p.Contains($"unknown key '{above}{wrong}'") && p.Contains($"did you mean '{right}'")),
                        $"{JsonSetting(spelled)}: {string.Join(" | ", problems)}");
                    // …and on the command line, where the whole key is corrected.
                    var option = "--" + string.Join(":", spelled.Select(s => s.Replace("[]", ":0", StringComparison.Ordinal)));
                    problems = Problems(Write("{}"), option, "1");
                    Assert.True(problems.Any(p => p.Contains("unknown key") && p.Contains($"on the command line as {option}") && p.Contains($"did you mean '{right}")),
                        $"{option}: {string.Join(" | ", problems)}");
                }
            }
        }
        Assert.True(cases > 150, $"only {cases} misspellings tried");
    }

    /// <summary>The other half of the property: what the README documents is read, and what is read is documented.</summary>
    [Fact]
    public void Every_documented_key_is_accepted_and_every_key_is_documented()
    {
        var documented = DocumentedKeys().ToList();
        Assert.True(documented.Count > 40, string.Join(", ", documented));
        foreach (var key in documented)
        {
            var problems = Problems(Write(JsonSetting(key.Split('.'))));
            Assert.DoesNotContain(problems, p => p.Contains("unknown key", StringComparison.Ordinal));
        }
        foreach (var key in KnownKeys().Select(k => k.Replace("[]", "", StringComparison.Ordinal)))
            Assert.True(documented.Any(d => key.Equals(d, StringComparison.OrdinalIgnoreCase) || key.StartsWith(d + ".", StringComparison.OrdinalIgnoreCase)
                || d.StartsWith(key + ".", StringComparison.OrdinalIgnoreCase)),
                $"{key} is not in the README's configuration table");
    }

    [GeneratedRegex(@"^\| (`[^|]+`) \|", RegexOptions.Multiline)]
    private static partial Regex TableKeys();

    /// <summary>The keys of the README's configuration table: <c>`auth.jwt.issuer` / `audience`</c> names two.</summary>
    private static IEnumerable<string> DocumentedKeys()
    {
        var readme = File.ReadAllText(Path.Combine(Repository.Root, "README.md"));
        var start = readme.IndexOf("## Configuration", StringComparison.Ordinal);
        var section = readme[start..readme.IndexOf("\n## ", start + 1, StringComparison.Ordinal)];
        foreach (Match row in TableKeys().Matches(section))
        {
            var names = row.Groups[1].Value.Split('/').Select(n => n.Trim().Trim('`')).ToList();
            if (names[0] == "key") continue;
            var parent = names[0].Contains('.', StringComparison.Ordinal) ? names[0][..names[0].LastIndexOf('.')] + "." : "";
            yield return names[0];
            foreach (var sibling in names.Skip(1)) yield return parent + sibling;
        }
    }

    /// <summary>ws2sd run to its end (killed, and the test failed, if it is still running after 60 s: it started a server).</summary>
    private static async Task<Command> Ws2sdAsync(string[] args, Dictionary<string, string?>? environment = null)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "ws2sd.dll"));
        foreach (var arg in args) info.ArgumentList.Add(arg);
        foreach (var (name, value) in environment ?? [])
            if (value is null) info.Environment.Remove(name);
            else info.Environment[name] = value;
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            Assert.Fail($"ws2sd {string.Join(' ', args)} was still running after 60 s:\n{await output}{await errors}");
        }
        return new Command(process.ExitCode, await output, await errors);
    }

    /// <summary>Attack (issue 21, 1): the same mistakes through each way of setting a key start nothing.</summary>
    [Fact]
    public async Task A_misspelt_key_in_the_file_the_environment_or_the_command_line_stops_ws2sd_with_exit_2()
    {
        var file = Write(Listen + ""","destinatons":{"allow":["127.0.0.1:6379"]},"allowConnectToServerLocal":true}""");
        var run = await Ws2sdAsync(["--config", file]);
        Assert.Equal(2, run.Exit);
        Assert.Contains($"unknown key 'destinatons' (in {file})", run.Errors);
        Assert.Contains("did you mean 'destinations'?", run.Errors);

        var plain = Write(Listen + "}", "plain.json");
        run = await Ws2sdAsync(["--config", plain, "--listne:port", "4000"]);
        Assert.Equal(2, run.Exit);
        Assert.Contains("unknown key 'listne.port' (on the command line as --listne:port)", run.Errors);
        Assert.Contains("did you mean 'listen.port' (--listen:port)?", run.Errors);

        run = await Ws2sdAsync(["--config", plain], new() { ["WS2S_limits__idleTimeout"] = "60" });
        Assert.Equal(2, run.Exit);
        Assert.Contains("unknown key 'limits.idleTimeout' (in the environment as WS2S_limits__idleTimeout)", run.Errors);
        Assert.Contains("did you mean 'limits.idleTimeoutSeconds' (WS2S_limits__idleTimeoutSeconds)?", run.Errors);
    }

    /// <summary>
    /// Issue 21, 1: keys are read whatever their case (<c>--Listen:Port</c> works), so <c>--Config PATH</c> and
    /// <c>WS2S_config</c> are accepted as the program's own; they must then name the file read, not leave
    /// ~/.ws2s/config.json (with its defaults) read instead without a word.
    /// </summary>
    [Theory]
    [InlineData("--Config", null)]
    [InlineData("--CONFIG=", null)]
    [InlineData(null, "WS2S_config")]
    public async Task The_config_file_is_named_in_any_case_the_other_keys_are(string? option, string? variable)
    {
        var file = Write(Listen + ""","destinatons":{}}""", "mine.json");
        var home = Directory.CreateDirectory(Path.Combine(_directory, "home")).FullName;
        var args = option is null ? Array.Empty<string>() : option.EndsWith('=') ? [option + file] : [option, file];
        var environment = new Dictionary<string, string?> { ["HOME"] = home, ["WS2S_CONFIG"] = null };
        if (variable is not null) environment[variable] = file;
        var run = await Ws2sdAsync(args, environment);
        Assert.True(run.Exit == 2, run.Output + run.Errors);
        Assert.Contains($"unknown key 'destinatons' (in {file})", run.Errors);
        Assert.False(File.Exists(Path.Combine(home, ".ws2s", "config.json")), "ws2sd read ~/.ws2s/config.json instead");
    }

    /// <summary>
    /// Issue 21: the commonest day-one failure — `dotnet run` while `ws2sd start` (or a first `dotnet run`) still
    /// holds 3613 — says what to do, not only that the address is in use.
    /// </summary>
    [Fact]
    public async Task A_port_already_taken_says_what_to_do()
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
        var run = await Ws2sdAsync(["--config", Write(TestConfig.Defaults.Serving(s => s.Listen.Port = port))]);
        Assert.Equal(2, run.Exit);
        Assert.Contains($"ws2s: cannot listen: Failed to bind to address http://127.0.0.1:{port}: address already in use", run.Errors);
        Assert.Contains("`ws2sd status`", run.Errors);
        Assert.Contains("--listen:port", run.Errors);
    }

    /// <summary>Issue 21, 5: a misspelt command or option is a usage error, not a server on 3613.</summary>
    [Theory]
    [InlineData(new[] { "stauts" }, "unknown command 'stauts'; did you mean 'status'?")]
    [InlineData(new[] { "bogus" }, "unknown command 'bogus'")]
    [InlineData(new[] { "--port", "4000" }, "did you mean 'listen.port' (--listen:port)?")]
    [InlineData(new[] { "-p", "4000" }, "unknown option '-p'")]
    [InlineData(new[] { "run", "now" }, "unexpected argument 'now'")]
    [InlineData(new[] { "--listen:port" }, "--listen:port needs a value")]
    [InlineData(new[] { "status", "--verbose" }, "ws2sd status takes no options")]
    public async Task A_misspelt_command_or_option_prints_the_usage_and_exits_2(string[] args, string words)
    {
        var run = await Ws2sdAsync(args[0].StartsWith('-') ? ["--config", Write(Listen + "}"), .. args] : args);
        Assert.Equal(2, run.Exit);
        Assert.Contains(words, run.Errors);
        Assert.Contains("usage: ws2sd [run|start|stop|restart|status|reload|service|probe URL|help]", run.Errors);
    }

    /// <summary>Issue 21, 6: a bad value names the key in the config's spelling, where it was set, and what it must be.</summary>
    [Fact]
    public async Task A_bad_value_says_where_it_was_set_and_what_is_expected_in_the_configs_own_names()
    {
        var plain = Write(Listen + "}");
        var run = await Ws2sdAsync(["--config", plain, "--listen:port", "abc"]);
        Assert.Equal(2, run.Exit);
        Assert.Contains("listen.port 'abc' (on the command line as --listen:port) is not a port number from 0 to 65535", run.Errors);
        Assert.DoesNotContain("System.Int32", run.Errors);
        Assert.DoesNotContain(plain, run.Errors);

        run = await Ws2sdAsync(["--config", plain], new() { ["WS2S_limits__maxSessions"] = "lots" });
        Assert.Equal(2, run.Exit);
        Assert.Contains("limits.maxSessions 'lots' (in the environment as WS2S_limits__maxSessions) is not a whole number from 1 to 1000000", run.Errors);

        var file = Write("""{"listen":{"host":"127.0.0.1","port":0},"limits":{"idleTimeoutSeconds":"an hour"},"allowConnectToServerLocal":"yes"}""", "values.json");
        run = await Ws2sdAsync(["--config", file]);
        Assert.Equal(2, run.Exit);
        Assert.Contains($"limits.idleTimeoutSeconds 'an hour' (in {file}) is not a whole number from 0 to 1000000", run.Errors);
        Assert.Contains($"allowConnectToServerLocal 'yes' (in {file}) is not true or false", run.Errors);

        // A value out of range, from where it was set; and a list given one value (which binding would drop silently).
        run = await Ws2sdAsync(["--config", plain, "--listen:port", "70000"]);
        Assert.Equal(2, run.Exit);
        Assert.Contains("listen.port 70000 is not a port number (0-65535, 0 picks a free port) (on the command line as --listen:port)", run.Errors);
        run = await Ws2sdAsync(["--config", plain, "--destinations:allow", "10.0.0.0/8"]);
        Assert.Equal(2, run.Exit);
        Assert.Contains("destinations.allow '10.0.0.0/8' (on the command line as --destinations:allow) must be a list", run.Errors);
        Assert.Contains("--destinations:allow:0", run.Errors);
    }

    /// <summary>
    /// Attack: a secret put where the config wants a list or an object (<c>"tokens":"S3CRET"</c>,
    /// <c>WS2S_tokens=S3CRET</c>, <c>--tokens S3CRET</c>, <c>"auth":{"jwt":"S3CRET"}</c>) is refused without
    /// repeating it: the words go to the terminal, the log, the journal and <c>~/.ws2s/ws2sd.reload</c>.
    /// </summary>
    [Fact]
    public async Task A_secret_given_where_a_list_or_an_object_belongs_is_refused_without_repeating_it()
    {
        const string secret = "S3CRET-first-contact-value";
        foreach (var json in new[]
        {
            $$"""{"tokens":"{{secret}}"}""",
            $$$"""{"auth":{"jwt":"{{{secret}}}"}}""",
            $$"""{"endpoints":[{"host":"127.0.0.1","port":0,"pfx":"x.pfx","pfxPassword":["{{secret}}"]}]}""",
            $$$"""{"tokens":{"first":"{{{secret}}}"}}""",
            $$"""{"ssh":"{{secret}}"}""",
            $$"""{"rawTargets":"{{secret}}"}""",
        })
        {
            var problems = Problems(Write(json));
            Assert.NotEmpty(problems);
            Assert.DoesNotContain(problems, p => p.Contains(secret, StringComparison.Ordinal));
        }
        var cli = Problems(Write("{}"), "--tokens", secret);
        Assert.Contains(cli, p => p.Contains("tokens (on the command line as --tokens) must be a list", StringComparison.Ordinal));
        Assert.DoesNotContain(cli, p => p.Contains(secret, StringComparison.Ordinal));

        var plain = Write(Listen + "}", "plain.json");
        var run = await Ws2sdAsync(["--config", plain], new() { ["WS2S_tokens"] = secret });
        Assert.Equal(2, run.Exit);
        Assert.Contains("tokens (in the environment as WS2S_tokens) must be a list", run.Errors);
        Assert.Contains("WS2S_tokens__0=", run.Errors);
        Assert.DoesNotContain("on the command line", run.Errors);
        Assert.DoesNotContain(secret, run.Output + run.Errors);
    }

    /// <summary>Issue 21, 7: a JSON mistake is placed by line and column.</summary>
    [Fact]
    public void A_file_that_is_not_json_is_refused_with_its_line_and_column()
    {
        var file = Write("{\"listen\":{\"host\":\"127.0.0.1\",\n  \"port\":0 \"x\":1}}");
        var error = Assert.Throws<ConfigException>(() => ConfigFile.Read(new ConfigurationBuilder(), file, []));
        Assert.Contains($"{file} is not valid JSON: line 2, column 12:", error.Message);
        Assert.DoesNotContain("Could not parse the JSON file", error.Message);
    }

    /// <summary>
    /// Started with SIGHUP ignored (<c>nohup ws2sd start</c>, or any parent that ignores it: the ignore is inherited), ws2sd
    /// still takes SIGHUP as a reload. It used to keep the ignore, and <c>ws2sd reload</c> waited 30 s for an answer that
    /// never came (CI caught it when its runner ran under nohup).
    /// </summary>
    [SkippableFact]
    public async Task Ws2sd_started_with_SIGHUP_ignored_still_reloads_on_it()
    {
        Requirements.Need("/usr/bin/nohup", "coreutils");
        await using var home = new Ws2sdHome();
        var port = Loopback.FreePort();
        await home.WriteConfigAsync(port, "127.0.0.1:1");
        var (exit, output) = await home.Ws2sdUnderAsync(["/usr/bin/nohup"], "start");
        Assert.True(exit == 0, home.Explain(output));
        await home.WriteConfigAsync(port, "127.0.0.1:2");
        (exit, output) = await home.Ws2sdAsync("reload");
        Assert.True(exit == 0, home.Explain(output));
        Assert.Contains("reloaded its configuration", output);
    }

    /// <summary>Issue 21, 7: `ws2sd reload` says whether the new configuration took, and exits non-zero when it did not.</summary>
    [SkippableFact]
    public async Task Ws2sd_reload_waits_for_the_outcome_and_fails_when_the_new_configuration_is_refused()
    {
        await using var home = new Ws2sdHome();
        var port = Loopback.FreePort();
        await home.WriteConfigAsync(port, "127.0.0.1:1");
        var (exit, output) = await home.Ws2sdAsync("start");
        Assert.True(exit == 0, home.Explain(output));

        await File.WriteAllTextAsync(home.Config, $"{{\"listen\":{{\"host\":\"127.0.0.1\",\"port\":{port}}},\n  \"origins\":[\"*\"]\n  \"tokens\":[]}}");
        (exit, output) = await home.Ws2sdAsync("reload");
        Assert.True(exit == 2, home.Explain(output));
        Assert.Contains("refused the new configuration", output);
        Assert.Contains("line 3, column 3", output);
        Assert.Contains("the previous configuration stays in force", output);

        await home.WriteConfigAsync(Ws2sdHome.ConfigFor(port, "127.0.0.1:1").Json[..^1] + ""","destinatons":{}}""");
        (exit, output) = await home.Ws2sdAsync("reload");
        Assert.True(exit == 2, home.Explain(output));
        Assert.Contains("did you mean 'destinations'?", output);

        await home.WriteConfigAsync(port, "127.0.0.1:2");
        (exit, output) = await home.Ws2sdAsync("reload");
        Assert.True(exit == 0, home.Explain(output));
        Assert.Contains("reloaded its configuration", output);
    }

    /// <summary>Issue 21, 8: every line is one JSON object stamped in UTC, whatever the machine's time zone.</summary>
    [Fact]
    public async Task With_json_logs_every_line_is_json_stamped_in_utc()
    {
        var config = Write(TestConfig.Defaults.Serving(s => s.Management = new() { Port = 0 }).With(o => o.Origins = ["*"]));
        var info = new Dictionary<string, string?> { ["TZ"] = "Asia/Tokyo" };
        await using (var server = ServerProcess.Start(["--config", config, "--log-format", "json"], environment: info))
        {
            var url = await server.ListeningUrlAsync();
            await server.ManagementUrlAsync();
            await using (var client = await WsClient.ConnectAsync(url))
            {
                await client.SendAsync(new { command = "connect", host = "127.0.0.1", port = 1 });
                await client.ReceiveJsonAsync();
            }
            await server.WaitForLineAsync(l => ServerProcess.Said(l).Contains("ended after", StringComparison.Ordinal));
            await server.TerminateAsync();
            Assert.Equal(0, await server.ExitCodeAsync());
            AssertJsonLines(server.Output);
        }
        // A configuration error is a JSON line too.
        var run = await Ws2sdAsync(["--config", config, "--log-format", "json", "--listen:port", "abc"], info);
        Assert.Equal(2, run.Exit);
        AssertJsonLines(run.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("listen.port 'abc'", run.Errors);
    }

    private static void AssertJsonLines(IEnumerable<string> lines)
    {
        Assert.NotEmpty(lines);
        foreach (var line in lines)
        {
            var json = JsonNode.Parse(line) ?? throw new Xunit.Sdk.XunitException($"not JSON: {line}");
            var stamp = json["Timestamp"]!.GetValue<string>();
            Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", stamp);
            var when = DateTime.Parse(stamp, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal);
            Assert.True(Math.Abs((DateTime.UtcNow - when).TotalMinutes) < 5, $"{stamp} is not now in UTC ({DateTime.UtcNow:O})");
        }
    }

    /// <summary>Issue 21, 2: with only signed tokens configured, the start log says so (not "0 loaded").</summary>
    [Fact]
    public async Task With_only_signed_tokens_the_start_log_says_signed_tokens_are_required()
    {
        var secret = Path.Combine(_directory, "secret");
        await File.WriteAllTextAsync(secret, new string('s', 40));
        var config = Write(TestConfig.Defaults.With(o => o.Auth.Jwt = new() { SecretFile = secret }));
        await using var server = ServerProcess.Start(["--config", config]);
        await server.WaitForLineAsync(l => l.Contains("access tokens required: signed tokens (auth.jwt)", StringComparison.Ordinal));
        await server.ListeningUrlAsync();
        Assert.DoesNotContain(server.Output, l => l.Contains("0 loaded", StringComparison.Ordinal));
    }
}

/// <summary>What log redaction leaves of a sentence: a question mark ends a question, not a URL.</summary>
public sealed class RedactionWordsTests
{
    [Theory]
    [InlineData("unknown key 'destinatons': did you mean 'destinations'?; the previous configuration stays in force")]
    [InlineData("is ws2sd running? is the token right?")]
    public void A_question_in_words_is_logged_whole(string words) =>
        Assert.Equal(words, Ws2s.AspNetCore.Telemetry.LogRedaction.Redact(words, []));

    [Theory]
    [InlineData("GET /path?token=s3cret-4f9a HTTP/1.1", "s3cret-4f9a")]
    [InlineData("/?;x=s3cret-4f9a", "s3cret-4f9a")]
    [InlineData("/?&s3cret-4f9a", "s3cret-4f9a")]
    public void A_query_string_is_still_hidden(string text, string secret) =>
        Assert.DoesNotContain(secret, Ws2s.AspNetCore.Telemetry.LogRedaction.Redact(text, []));
}
