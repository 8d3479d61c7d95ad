using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Ws2s.Host.Tests;

/// <summary>
/// deploy/Dockerfile and .dockerignore without a Docker daemon (CI has none, and no hadolint is to be
/// had from a package registry): the lint rules that matter here checked on the parsed file, and the
/// image's build stage carried out on this machine — from a build context filtered as Docker filters
/// it, with the Dockerfile's own COPY and RUN steps — then the published server started as the image's
/// ENTRYPOINT starts it and asked its HEALTHCHECK.
/// </summary>
public sealed class DockerfileTests
{
    private static readonly string DockerfilePath = Path.Combine(Repository.Root, "deploy", "Dockerfile");
    private static readonly string IgnorePath = Path.Combine(Repository.Root, ".dockerignore");

    /// <summary>One instruction: its keyword (upper case), its text (continuations joined) and the stage it is in.</summary>
    private sealed record Instruction(string Keyword, string Text, int Stage);

    private static List<Instruction> Parse()
    {
        var instructions = new List<Instruction>();
        var stage = -1;
        var pending = "";
        foreach (var raw in File.ReadAllLines(DockerfilePath))
        {
            var line = raw.TrimEnd();
            if (pending.Length == 0 && (line.TrimStart().StartsWith('#') || line.Trim().Length == 0)) continue;
            if (line.EndsWith('\\'))
            {
                pending += line[..^1] + " ";
                continue;
            }
            var whole = (pending + line).Trim();
            pending = "";
            var keyword = whole.Split(' ', 2)[0].ToUpperInvariant();
            if (keyword == "FROM") stage++;
            instructions.Add(new Instruction(keyword, whole.Split(' ', 2).ElementAtOrDefault(1)?.Trim() ?? "", stage));
        }
        return instructions;
    }

    /// <summary>The words of a JSON-form (exec form) instruction; fails when it is in shell form.</summary>
    private static string[] ExecForm(string text)
    {
        Assert.True(text.StartsWith('['), $"use the JSON (exec) form, so signals reach the process: {text}");
        return JsonNode.Parse(text)!.AsArray().Select(w => (string)w!).ToArray();
    }

    private static int FinalStage(List<Instruction> all) => all.Max(i => i.Stage);

    [Fact]
    public void The_dockerignore_keeps_build_output_test_results_packages_and_git_out_of_the_context()
    {
        Assert.True(File.Exists(IgnorePath), ".dockerignore is missing: a local build's bin/ and obj/ would go into the image's build context");
        var ignore = DockerIgnore.Read(IgnorePath);
        foreach (var path in new[]
        {
            "src/Ws2s.Host/bin/Debug/net10.0/ws2sd.dll", "src/Ws2s.Host/obj/project.assets.json", "src/Ws2s.Protocol/obj/Debug/x",
            "tests/Ws2s.Host.Tests/bin/Debug/net10.0/ws2sd.dll", "TestResults/run.trx", "clients/ws2s-js/node_modules/ws/index.js",
            ".git/HEAD", "nupkg/ws2s.1.0.0.nupkg", "bench/Ws2s.Bench/BenchmarkDotNet.Artifacts/results/x.md",
        })
            Assert.True(ignore.Excludes(path), $".dockerignore lets {path} into the build context");
    }

    [Fact]
    public void Every_path_the_dockerfile_copies_exists_and_is_in_the_build_context()
    {
        var ignore = DockerIgnore.Read(IgnorePath);
        var copies = Parse().Where(i => i.Keyword is "COPY" or "ADD").ToList();
        Assert.DoesNotContain(copies, c => c.Keyword == "ADD"); // COPY says what it does (hadolint DL3020)
        foreach (var copy in copies.Where(c => !c.Text.StartsWith("--from", StringComparison.Ordinal)))
        {
            var words = copy.Text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            foreach (var source in words[..^1])
            {
                var path = Path.Combine(Repository.Root, source.TrimEnd('/'));
                Assert.True(File.Exists(path) || Directory.Exists(path), $"COPY {source}: no such path in the repository");
                var relative = source.TrimEnd('/');
                if (relative is "" or ".") continue;
                Assert.False(ignore.Excludes(relative), $"COPY {source}: excluded by .dockerignore");
                if (Directory.Exists(path))
                    foreach (var file in Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(Repository.Root, f)))
                        if (!Regex.IsMatch(file, @"(^|/)(bin|obj|node_modules)/"))
                            Assert.False(ignore.Excludes(file), $"COPY {source}: {file} is excluded by .dockerignore");
            }
        }
    }

    [Fact]
    public void Base_images_are_pinned_to_the_projects_dotnet_the_image_runs_as_a_user_and_its_healthcheck_is_ws2sd_probe()
    {
        var all = Parse();
        var csproj = File.ReadAllText(Path.Combine(Repository.Root, "src", "Ws2s.Host", "Ws2s.Host.csproj"));
        var framework = Regex.Match(csproj, "<TargetFramework>net(\\d+\\.\\d+)</TargetFramework>").Groups[1].Value;
        foreach (var from in all.Where(i => i.Keyword == "FROM"))
        {
            var image = from.Text.Split(' ')[0];
            Assert.True(image.Contains(':') || image.Contains('@'), $"FROM {image}: no tag (it would be latest)");
            var tag = image.Split('@')[0].Split(':').ElementAtOrDefault(1) ?? "";
            Assert.NotEqual("latest", tag);
            Assert.StartsWith(framework, tag); // the .NET the projects target (net10.0 -> 10.0…)
        }
        var final = FinalStage(all);
        Assert.StartsWith("mcr.microsoft.com/dotnet/aspnet:", all.Single(i => i.Keyword == "FROM" && i.Stage == final).Text);
        foreach (var workdir in all.Where(i => i.Keyword == "WORKDIR")) Assert.StartsWith("/", workdir.Text);

        // A user that is not root, set before the process starts (hadolint DL3002).
        var user = all.LastOrDefault(i => i.Keyword == "USER" && i.Stage == final);
        Assert.NotNull(user);
        Assert.DoesNotMatch("^(root|0)(:|$)", user.Text);
        Assert.True(user.Text is "$APP_UID" or "${APP_UID}" || Regex.IsMatch(user.Text, "^[1-9][0-9]*$"), $"USER {user.Text}: the aspnet image's APP_UID, or a numeric id (Kubernetes runAsNonRoot checks numbers)");

        // The entry point runs the published server; the health check asks it, on the port the image's config gives the management endpoints.
        var entry = ExecForm(all.Single(i => i.Keyword == "ENTRYPOINT").Text);
        Assert.Equal(["dotnet", "ws2sd.dll", "run"], entry[..3]);
        Assert.Contains("<AssemblyName>ws2sd</AssemblyName>", csproj);
        var config = ImageConfig(all);
        var management = (int)config["management"]!["port"]!;
        Assert.StartsWith($"dotnet ws2sd.dll probe http://127.0.0.1:{management}/readyz", HealthCheck(all));
        var exposed = all.Where(i => i.Keyword == "EXPOSE").SelectMany(i => i.Text.Split(' ')).ToList();
        Assert.Contains(((int)config["listen"]!["port"]!).ToString(), exposed);
        Assert.Contains(management.ToString(), exposed);
        Assert.Equal("0.0.0.0", (string)config["listen"]!["host"]!); // reachable through the container's port mapping
        Assert.Contains(all, i => i.Keyword == "ENV" && i.Text == "WS2S_CONFIG=/etc/ws2s/config.json");
    }

    [Fact]
    public void The_kubernetes_example_runs_a_versioned_image_it_does_not_pull_on_every_start()
    {
        var yaml = File.ReadAllText(Path.Combine(Repository.Root, "deploy", "kubernetes.yaml"));
        var image = Regex.Match(yaml, @"^\s*image:\s*(\S+)", RegexOptions.Multiline).Groups[1].Value;
        Assert.Matches(@"^ws2s:\d+\.\d+\.\d+$", image); // latest means imagePullPolicy Always: a locally built image is never found
        Assert.Contains($"<Version>{image.Split(':')[1]}</Version>", File.ReadAllText(Path.Combine(Repository.Root, "src", "Ws2s.Host", "Ws2s.Host.csproj")));
        Assert.Matches(@"imagePullPolicy:\s*IfNotPresent", yaml);
    }

    /// <summary>The HEALTHCHECK's command (shell form: /bin/sh -c runs it).</summary>
    private static string HealthCheck(List<Instruction> all)
    {
        var health = all.Single(i => i.Keyword == "HEALTHCHECK").Text;
        var command = health[(health.IndexOf("CMD ", StringComparison.Ordinal) + "CMD ".Length)..];
        return command.StartsWith('[') ? string.Join(' ', ExecForm(command)) : command;
    }

    /// <summary>The configuration the image writes to /etc/ws2s/config.json (its RUN printf).</summary>
    private static JsonObject ImageConfig(List<Instruction> all)
    {
        var write = all.Single(i => i.Keyword == "RUN" && i.Text.Contains("/etc/ws2s/config.json", StringComparison.Ordinal));
        return JsonNode.Parse(Regex.Match(write.Text, "'(\\{.*\\})'").Groups[1].Value)!.AsObject();
    }

    [Fact]
    public async Task The_build_stage_run_here_from_the_filtered_context_publishes_a_server_that_starts_as_the_image_starts_it()
    {
        var all = Parse();
        var ignore = DockerIgnore.Read(IgnorePath);
        var root = Directory.CreateTempSubdirectory("ws2s-docker-").FullName;
        try
        {
            // The build context as Docker sends it.
            var context = Path.Combine(root, "context");
            ignore.CopyContext(Repository.Root, context);
            Assert.False(Directory.Exists(Path.Combine(context, "src", "Ws2s.Host", "bin")));

            // Every stage's file system is one folder here ("/app" in stage 0 is <root>/fs0/app).
            string InStage(int stage, string path) => Path.Combine(root, $"fs{stage}", path.TrimStart('/'));
            var workdir = new Dictionary<int, string>();
            foreach (var step in all)
            {
                switch (step.Keyword)
                {
                    case "WORKDIR":
                        workdir[step.Stage] = step.Text;
                        Directory.CreateDirectory(InStage(step.Stage, step.Text));
                        break;
                    case "COPY":
                    {
                        var words = step.Text.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToList();
                        var from = words[0].StartsWith("--from=", StringComparison.Ordinal) ? words[0]["--from=".Length..] : null;
                        if (from is not null) words.RemoveAt(0);
                        var fromRoot = from is null ? context : InStage(all.First(i => i.Keyword == "FROM" && i.Text.EndsWith($" AS {from}", StringComparison.OrdinalIgnoreCase)).Stage, "/");
                        var destination = words[^1].StartsWith('/') ? InStage(step.Stage, words[^1]) : Path.Combine(InStage(step.Stage, workdir[step.Stage]), words[^1]);
                        foreach (var source in words[..^1]) CopyInto(Path.Combine(fromRoot, source.TrimStart('/')), destination, words.Count > 2 || words[^1].EndsWith('/'));
                        break;
                    }
                    case "RUN" when step.Stage < FinalStage(all):
                    {
                        // The build stage's commands, as written; its absolute output path is mapped into the stage's folder.
                        var command = Regex.Replace(step.Text, @"-o (/\S+)", m => "-o " + InStage(step.Stage, m.Groups[1].Value));
                        var run = await Command.RunAsync("/bin/sh", ["-c", command], workingDirectory: InStage(step.Stage, workdir[step.Stage]),
                            environment: new Dictionary<string, string?> { ["MSBUILDDISABLENODEREUSE"] = "1", ["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0", ["UseSharedCompilation"] = "false" },
                            patience: TimeSpan.FromMinutes(5));
                        Assert.True(run.Exit == 0, $"RUN {step.Text}\n{run.Printed}");
                        break;
                    }
                }
            }

            // The published layout holds what the image runs and serves: the entry point, and every file of the web console.
            var final = FinalStage(all);
            var app = InStage(final, workdir[final]);
            Assert.True(File.Exists(Path.Combine(app, "ws2sd.dll")), "the publish output has no ws2sd.dll for the ENTRYPOINT");
            var console = Path.Combine(AppContext.BaseDirectory, "wwwroot");
            foreach (var file in Directory.EnumerateFiles(console, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(console, f)))
                Assert.True(File.Exists(Path.Combine(app, "wwwroot", file)), $"the image would lack wwwroot/{file}");

            // Started as the ENTRYPOINT starts it — with the image's configuration, and with a user's that has no
            // management port — on loopback and free ports here; healthy by the HEALTHCHECK's command either way.
            var imageConfig = ImageConfig(all);
            var userConfig = JsonNode.Parse("""{"listen":{"host":"0.0.0.0","port":3613},"origins":["https://app.example.com"]}""")!.AsObject();
            foreach (var config in new[] { imageConfig, userConfig })
            {
                foreach (var listener in new[] { "listen", "management" }.Where(config.ContainsKey))
                {
                    config[listener]!["host"] = "127.0.0.1";
                    config[listener]!["port"] = 0;
                }
                var configFile = Path.Combine(root, "config.json");
                await File.WriteAllTextAsync(configFile, config.ToJsonString());
                var entry = ExecForm(all.Single(i => i.Keyword == "ENTRYPOINT").Text);
                await using var server = WatchedProcess.Start(entry[0], entry[1..], workingDirectory: app,
                    environment: new Dictionary<string, string?> { ["WS2S_CONFIG"] = configFile, ["HOME"] = root });
                var listening = new Uri(ServerProcess.Said(await server.WaitForLineAsync(l => ServerProcess.Said(l).StartsWith("ws2s listening on ", StringComparison.Ordinal)))["ws2s listening on ".Length..].Split(' ')[0]);
                var health = HealthCheck(all).Replace("127.0.0.1:3613", $"127.0.0.1:{listening.Port}");
                if (config.ContainsKey("management"))
                {
                    var management = new Uri(ServerProcess.Said(await server.WaitForLineAsync(l => ServerProcess.Said(l).StartsWith("ws2s management", StringComparison.Ordinal))).Split(' ').Last());
                    health = health.Replace("127.0.0.1:3614", $"127.0.0.1:{management.Port}");
                }
                else
                {
                    // No management port: a free port stands in for the image's 3614, where nothing answers.
                    health = health.Replace("127.0.0.1:3614", $"127.0.0.1:{Loopback.FreePort()}");
                }
                var check = await Command.RunAsync("/bin/sh", ["-c", health], workingDirectory: app);
                Assert.True(check.Exit == 0, $"{health}\n{check.Printed}\n{server.Output}");
                using var http = new HttpClient();
                Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri($"http://127.0.0.1:{listening.Port}/"))).StatusCode);
                Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri($"http://127.0.0.1:{listening.Port}/lib/ws2s.js"))).StatusCode);
            }
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>COPY's rule: a folder's contents go into the destination; a file goes into it when it is a folder, else becomes it.</summary>
    private static void CopyInto(string source, string destination, bool destinationIsFolder)
    {
        if (Directory.Exists(source))
        {
            foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
            {
                var target = Path.Combine(destination, Path.GetRelativePath(source, file));
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.Copy(file, target, overwrite: true);
            }
            return;
        }
        Assert.True(File.Exists(source), $"COPY: {source} is not in the build context");
        var to = destinationIsFolder ? Path.Combine(destination, Path.GetFileName(source)) : destination;
        Directory.CreateDirectory(Path.GetDirectoryName(to)!);
        File.Copy(source, to, overwrite: true);
    }
}

/// <summary>
/// .dockerignore as Docker reads it (its pattern matcher): one pattern per line, <c>#</c> comments,
/// <c>!</c> re-includes, <c>*</c> and <c>?</c> within a path segment, <c>**</c> across segments; a path is
/// excluded when the last pattern matching it or one of its parent folders excludes.
/// </summary>
public sealed class DockerIgnore
{
    private readonly List<(Regex Pattern, bool Include, string Text)> _patterns;

    private DockerIgnore(List<(Regex, bool, string)> patterns) => _patterns = patterns;

    public static DockerIgnore Read(string path)
    {
        var patterns = new List<(Regex, bool, string)>();
        foreach (var raw in File.ReadAllLines(path))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var include = line.StartsWith('!');
            var text = (include ? line[1..] : line).Trim().Trim('/');
            if (text.IndexOfAny(['[', ']', '\\']) >= 0) throw new NotSupportedException($".dockerignore: this test reads *, ? and ** only: {line}");
            var regex = "^" + Regex.Replace(text, @"\*\*/|\*\*|\*|\?|[^*?]+", m => m.Value switch
            {
                "**/" => "(.*/)?",
                "**" => ".*",
                "*" => "[^/]*",
                "?" => "[^/]",
                _ => Regex.Escape(m.Value),
            }) + "$";
            patterns.Add((new Regex(regex), include, text));
        }
        return new DockerIgnore(patterns);
    }

    /// <summary>Whether <paramref name="path"/> (relative to the context, with /) stays out of the build context.</summary>
    public bool Excludes(string path)
    {
        var candidates = new List<string>();
        var parts = path.Split('/');
        for (var n = 1; n <= parts.Length; n++) candidates.Add(string.Join('/', parts[..n]));
        var excluded = false;
        foreach (var (pattern, include, _) in _patterns)
            if (candidates.Any(pattern.IsMatch)) excluded = !include;
        return excluded;
    }

    /// <summary>Whether some re-include pattern could bring back a path below the excluded folder <paramref name="folder"/>.</summary>
    private bool MayReinclude(string folder) =>
        _patterns.Any(p => p.Include && (p.Text.StartsWith(folder + "/", StringComparison.Ordinal) || p.Text.StartsWith("**", StringComparison.Ordinal)));

    /// <summary>Copies what Docker would send as the build context of <paramref name="root"/> into <paramref name="destination"/>.</summary>
    public void CopyContext(string root, string destination)
    {
        void Walk(string folder)
        {
            foreach (var file in Directory.EnumerateFiles(folder))
            {
                var relative = Path.GetRelativePath(root, file).Replace('\\', '/');
                if (Excludes(relative)) continue;
                var target = Path.Combine(destination, relative);
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.Copy(file, target);
            }
            foreach (var sub in Directory.EnumerateDirectories(folder))
            {
                var relative = Path.GetRelativePath(root, sub).Replace('\\', '/');
                if (new DirectoryInfo(sub).LinkTarget is not null) continue;
                if (Excludes(relative) && !MayReinclude(relative)) continue;
                Walk(sub);
            }
        }
        Walk(root);
    }
}
