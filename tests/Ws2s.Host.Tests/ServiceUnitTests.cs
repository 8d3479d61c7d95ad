using System.Text;

namespace Ws2s.Host.Tests;

/// <summary>
/// The systemd unit of <c>ws2sd service</c> (and deploy/ws2sd.service, the same unit) on a machine where
/// systemd is not PID 1, as CI is: systemd's own tools check it (<c>systemd-analyze verify</c>, its offline
/// <c>security</c> review, and the command lines as systemd parses them), then the unit's commands run
/// under its constraints rebuilt here as root — a user of its own without capabilities or new privileges,
/// the file system read-only with the home folders hidden, a configuration folder as ConfigurationDirectory=
/// makes it, the unit's system call filter and address families through libseccomp, a network namespace
/// of its own — and ws2sd must start, with the configuration the unit writes, listening on 127.0.0.1.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class ServiceUnitTests : IDisposable
{
    private const string DeployedProgram = "/opt/ws2s/ws2sd";
    /// <summary>
    /// Where the tests install ws2s: as root, under /var/lib (the unit's PrivateTmp=yes would hide /tmp from the
    /// service, and ws2sd service refuses a program there); otherwise a temp folder (the tests skip).
    /// </summary>
    private readonly string _root = Environment.UserName == "root"
        ? Directory.CreateDirectory(Path.Combine("/var/lib", $"ws2s-service-tests-{Guid.NewGuid():N}")).FullName
        : Directory.CreateTempSubdirectory("ws2s-service-").FullName;

    public ServiceUnitTests() => File.SetUnixFileMode(_root, (UnixFileMode)0b111_101_101); // 0755: the service's user reads what the test puts here

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static bool Ci => Environment.GetEnvironmentVariable("CI") == "true";

    private static void NeedRoot()
    {
        if (Environment.UserName == "root") return;
        Assert.False(Ci, "the service tests need root (a unit for the system, users, mounts, namespaces)");
        Skip.If(true, "the service tests need root (a unit for the system, users, mounts, namespaces)");
    }

    private static void NeedTools()
    {
        NeedRoot();
        Requirements.Need("/usr/bin/systemd-analyze", "systemd");
        Requirements.Need("/usr/bin/unshare", "util-linux");
        Requirements.Need("/usr/bin/setpriv", "util-linux");
        Requirements.Need("/usr/bin/nsenter", "util-linux");
        Requirements.Need("/usr/bin/python3", "python3");
        Requirements.Need(File.Exists("/usr/sbin/ip") ? "/usr/sbin/ip" : "/usr/bin/ip", "iproute2");
    }

    /// <summary>
    /// ws2s installed as the README says (<c>dotnet tool install --tool-path /opt/ws2s</c>): the build's files in a
    /// folder of their own here (hard links), whose mode says who may read it. Returns the apphost, <c>ws2sd</c>.
    /// </summary>
    private async Task<string> InstallAsync(string name, UnixFileMode mode)
    {
        var folder = Path.Combine(_root, name);
        var copy = await Command.RunAsync("cp", ["-al", AppContext.BaseDirectory + ".", folder]);
        if (copy.Exit != 0) copy = await Command.RunAsync("cp", ["-a", AppContext.BaseDirectory + ".", folder]); // another file system
        Assert.True(copy.Exit == 0, copy.Printed);
        File.SetUnixFileMode(folder, mode);
        return Path.Combine(folder, "ws2sd");
    }

    /// <summary><c>ws2sd service ARGS</c> as root, or as <paramref name="uid"/> (a user with <paramref name="home"/>).</summary>
    private static async Task<Command> ServiceAsync(string program, string home, int? uid, params string[] args)
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin";
        if (uid is null)
            return await Command.RunAsync(program, ["service", .. args],
                environment: new Dictionary<string, string?> { ["HOME"] = home, ["WS2S_CONFIG"] = null, ["DOTNET_ROOT"] = null });
        return await Command.RunAsync("setpriv", [$"--reuid={uid}", $"--regid={uid}", "--clear-groups", "--", "env", "-i", $"HOME={home}", $"PATH={path}", program, "service", .. args]);
    }

    /// <summary>The unit a dry run prints, and where it says it would write it.</summary>
    private static (string Path, string Unit) DryRunUnit(Command run)
    {
        Assert.True(run.Exit == 0, run.Printed);
        const string would = "would write ";
        var text = run.Output;
        Assert.StartsWith(would, text);
        var path = text[would.Length..text.IndexOf(":\n\n", StringComparison.Ordinal)];
        var unit = text[(text.IndexOf(":\n\n", StringComparison.Ordinal) + 3)..text.IndexOf("\nthen run:", StringComparison.Ordinal)];
        return (path, unit);
    }

    private string WriteUnit(string unit, string folder)
    {
        var directory = Path.Combine(_root, folder);
        Directory.CreateDirectory(directory);
        var file = Path.Combine(directory, "ws2sd.service");
        File.WriteAllText(file, unit);
        File.SetUnixFileMode(directory, (UnixFileMode)0b111_101_101);
        return file;
    }

    /// <summary>The unit's settings, key by key, in file order (comments and sections left out).</summary>
    private static List<(string Key, string Value)> Settings(string unit) =>
        [.. unit.Split('\n').Where(l => l.Contains('=') && !l.StartsWith('#')).Select(l => (l[..l.IndexOf('=')], l[(l.IndexOf('=') + 1)..]))];

    /// <summary>
    /// The unit's commands as systemd parses them (its debug dump of the unit), with the <c>$$</c> it turns into
    /// <c>$</c> when it runs them: Exec setting → each command's words.
    /// </summary>
    private async Task<Dictionary<string, List<string[]>>> CommandsAsync(string unitFile, int? uid = null)
    {
        var runtime = Path.Combine(_root, $"runtime-{uid}");
        Directory.CreateDirectory(runtime);
        string[] verify = ["env", "SYSTEMD_LOG_LEVEL=debug", $"XDG_RUNTIME_DIR={runtime}", "systemd-analyze", .. uid is null ? Array.Empty<string>() : ["--user"], "verify", unitFile];
        if (uid is not null) await Command.RunAsync("chown", [$"{uid}:{uid}", runtime]);
        var run = uid is null ? await Command.RunAsync(verify[0], verify[1..])
            : await Command.RunAsync("setpriv", [$"--reuid={uid}", $"--regid={uid}", "--clear-groups", "--", .. verify]);
        var commands = new Dictionary<string, List<string[]>>();
        string? setting = null;
        var inUnit = false;
        foreach (var line in run.Printed.Split('\n').Select(l => l.Trim()))
        {
            if (line.StartsWith("-> Unit ", StringComparison.Ordinal)) inUnit = line == "-> Unit ws2sd.service:";
            else if (inUnit && line.StartsWith("-> Exec", StringComparison.Ordinal)) setting = line[3..^1];
            else if (inUnit && setting is not null && line.StartsWith("Command Line: ", StringComparison.Ordinal))
                (commands.TryGetValue(setting, out var list) ? list : commands[setting] = []).Add(SystemdWords(line["Command Line: ".Length..]));
        }
        Assert.True(commands.ContainsKey("ExecStart"), "systemd-analyze printed no ExecStart for ws2sd.service:\n" + run.Printed);
        return commands;
    }

    /// <summary>The words of a command line as systemd's dump quotes them (C escapes), then <c>$$</c> → <c>$</c> as at run time.</summary>
    private static string[] SystemdWords(string line)
    {
        var words = new List<string>();
        var i = 0;
        while (i < line.Length)
        {
            if (line[i] == ' ')
            {
                i++;
                continue;
            }
            var word = new StringBuilder();
            var quoted = line[i] == '"';
            if (quoted) i++;
            while (i < line.Length && (quoted ? line[i] != '"' : line[i] != ' '))
            {
                if (line[i] == '\\')
                {
                    i++;
                    word.Append(line[i] switch { 'n' => '\n', 't' => '\t', var c => c });
                }
                else word.Append(line[i]);
                i++;
            }
            if (quoted) i++;
            var text = word.ToString();
            // At run time systemd replaces $$ with $, and $NAME/${NAME} with the environment: the units use only $$ (and $MAINPID).
            Assert.DoesNotContain("$", text.Replace("$$", "").Replace("$MAINPID", ""));
            words.Add(text.Replace("$$", "$"));
        }
        return [.. words];
    }

    [SkippableFact]
    public async Task As_root_the_unit_is_deploy_ws2sd_service_hardened_and_systemd_takes_it_as_it_is()
    {
        NeedTools();
        var program = await InstallAsync("opt", (UnixFileMode)0b111_101_101);
        var (path, unit) = DryRunUnit(await ServiceAsync(program, _root, uid: null, "--dry-run"));
        Assert.Equal("/etc/systemd/system/ws2sd.service", path);

        // One source: the deploy file is this unit for /opt/ws2s/ws2sd.
        var deployed = await File.ReadAllTextAsync(Path.Combine(Repository.Root, "deploy", "ws2sd.service"));
        Assert.Equal(deployed, unit.Replace($"ExecStart={program} ", $"ExecStart={DeployedProgram} "));

        var settings = Settings(unit);
        foreach (var hardening in new[] { ("DynamicUser", "yes"), ("User", "ws2s"), ("ConfigurationDirectory", "ws2s"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
            ("PrivateTmp", "yes"), ("NoNewPrivileges", "yes"), ("CapabilityBoundingSet", ""), ("SystemCallFilter", "@system-service"), ("RestartPreventExitStatus", "2") })
            Assert.Contains(hardening, settings);
        Assert.DoesNotContain(settings, s => s.Key == "MemoryDenyWriteExecute"); // .NET's JIT needs writable executable memory

        var file = WriteUnit(unit, "system");
        var verify = await Command.RunAsync("systemd-analyze", ["verify", file]);
        Assert.True(verify.Exit == 0 && verify.Printed.Trim() == "", $"systemd-analyze verify:\n{verify.Printed}");
        // systemd's own review of the sandbox: exposure 2.0 or lower (the old unit, as root, scored 9.6).
        var security = await Command.RunAsync("systemd-analyze", ["security", "--offline=true", "--threshold=20", file]);
        Assert.True(security.Exit == 0, security.Printed);
    }

    [SkippableFact]
    public async Task As_root_the_configuration_checked_before_installing_is_the_one_the_system_unit_reads()
    {
        NeedRoot();
        Skip.If(File.Exists("/etc/ws2s/config.json"), "/etc/ws2s/config.json exists on this machine; the check would read it");
        var program = await InstallAsync("check", (UnixFileMode)0b111_101_101);
        // Root's own ~/.ws2s/config.json is broken, but the system unit never reads it.
        Directory.CreateDirectory(Path.Combine(_root, ".ws2s"));
        await File.WriteAllTextAsync(Path.Combine(_root, ".ws2s", "config.json"), """{"destinatons":{}}""");
        var run = await ServiceAsync(program, _root, uid: null, "--dry-run");
        Assert.True(run.Exit == 0, run.Printed);
        // A file it would read (--config) is checked, and its problem said before anything is installed.
        var broken = Path.Combine(_root, "broken.json");
        await File.WriteAllTextAsync(broken, """{"listne":{}}""");
        run = await ServiceAsync(program, _root, uid: null, "--dry-run", "--config", broken);
        Assert.True(run.Exit == 2, run.Printed);
        Assert.Contains("did you mean 'listen'?", run.Printed);
    }

    [SkippableFact]
    public async Task The_system_unit_starts_on_a_fresh_machine_writes_its_config_and_listens_under_its_own_constraints()
    {
        NeedTools();
        var program = await InstallAsync("opt", (UnixFileMode)0b111_101_101);
        var (_, unit) = DryRunUnit(await ServiceAsync(program, _root, uid: null, "--dry-run"));
        var settings = Settings(unit);
        var commands = await CommandsAsync(WriteUnit(unit, "system"));

        // /etc/ws2s as ConfigurationDirectory=ws2s makes it on a fresh machine: empty, root's, 0755. It stands in for /etc/ws2s.
        var etc = Path.Combine(_root, "etc-ws2s");
        Directory.CreateDirectory(etc);
        File.SetUnixFileMode(etc, (UnixFileMode)0b111_101_101);
        var config = Path.Combine(etc, "config.json");
        string[] Here(string[] words) => [.. words.Select(w => w.Replace("/etc/ws2s/config.json", config))];
        Assert.Contains(("Environment", "WS2S_CONFIG=/etc/ws2s/config.json"), settings);

        // ExecStartPre=+…: as root, outside the sandbox, under the unit's UMask.
        var pre = Assert.Single(commands["ExecStartPre"]);
        Assert.Contains("ExecStartPre=+", unit);
        var umask = settings.Single(s => s.Key == "UMask").Value;
        var first = await Command.RunAsync("/bin/sh", ["-c", $"umask {umask} && exec \"$@\"", "sh", .. Here(pre)]);
        Assert.True(first.Exit == 0, first.Printed);
        Assert.Equal(Configuration.ConfigFile.Defaults.Trim() + "\n", await File.ReadAllTextAsync(config));
        Assert.Equal((UnixFileMode)0b110_100_100, File.GetUnixFileMode(config)); // 0644: the service's user reads it, root owns it
        // A later start leaves an edited configuration alone.
        var edited = """{"listen":{"host":"127.0.0.1","port":3613},"allowConnectToServerLocal":false,"limits":{"idleTimeoutSeconds":60}}""";
        await File.WriteAllTextAsync(config, edited);
        await Command.RunAsync("/bin/sh", ["-c", $"umask {umask} && exec \"$@\"", "sh", .. Here(pre)]);
        Assert.Equal(edited, await File.ReadAllTextAsync(config));

        // ExecStart: the unit's user (a fresh uid, HOME=/ as for a dynamic user), its environment, filter and address families.
        var start = Assert.Single(commands["ExecStart"]);
        Assert.Equal([program, "run", "--log-format", "json"], start);
        await using var service = await SandboxedAsync(system: true, uid: 61901, home: "/", readOnlyConfig: etc, settings,
            environment: [$"WS2S_CONFIG={config}", "USER=ws2s", "LOGNAME=ws2s"], Here(start));
        var listening = ServerProcess.Said(await service.WaitForLineAsync(l => ServerProcess.Said(l).StartsWith("ws2s listening on ", StringComparison.Ordinal)));
        Assert.StartsWith($"ws2s listening on ws://127.0.0.1:3613/ (config: {config})", listening);
        await ProbeAsync(service, program);
    }

    [SkippableFact]
    public async Task As_a_user_the_unit_is_a_user_unit_with_the_sandbox_a_user_manager_sets_up_and_it_starts()
    {
        NeedTools();
        const int uid = 61902;
        var program = await InstallAsync("opt", (UnixFileMode)0b111_101_101);
        var home = Path.Combine(_root, "home");
        Directory.CreateDirectory(home);
        await Command.RunAsync("chown", [$"{uid}:{uid}", home]);
        var (path, unit) = DryRunUnit(await ServiceAsync(program, home, uid, "--dry-run"));
        Assert.Equal(Path.Combine(home, ".config", "systemd", "user", "ws2sd.service"), path);
        var settings = Settings(unit);
        Assert.Contains(("WantedBy", "default.target"), settings);
        foreach (var hardening in new[] { ("NoNewPrivileges", "yes"), ("SystemCallFilter", "@system-service"), ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX AF_NETLINK"), ("UMask", "0077") })
            Assert.Contains(hardening, settings);
        // What a user's service manager cannot do (it runs as the user): no other user, no mounts, no capabilities to drop.
        foreach (var systemOnly in new[] { "User", "DynamicUser", "ConfigurationDirectory", "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "CapabilityBoundingSet", "ExecStartPre" })
            Assert.DoesNotContain(settings, s => s.Key == systemOnly);

        var file = WriteUnit(unit, "user");
        var commands = await CommandsAsync(file, uid);
        var start = Assert.Single(commands["ExecStart"]);
        Assert.Equal([program, "run"], start);
        // As the user, with its HOME: ws2sd writes ~/.ws2s/config.json itself, as `ws2sd start` would.
        await using var service = await SandboxedAsync(system: false, uid, home, readOnlyConfig: null, settings, environment: ["USER=u", "LOGNAME=u"], start);
        var listening = ServerProcess.Said(await service.WaitForLineAsync(l => ServerProcess.Said(l).StartsWith("ws2s listening on ", StringComparison.Ordinal)));
        Assert.StartsWith($"ws2s listening on ws://127.0.0.1:3613/ (config: {home}/.ws2s/config.json)", listening);
        await ProbeAsync(service, program);
    }

    [SkippableFact]
    public async Task As_root_a_ws2sd_the_services_user_cannot_reach_is_refused_with_the_way_to_install_it()
    {
        NeedRoot();
        // ws2s installed in a folder only root may enter, as `dotnet tool install -g` does in /root/.dotnet/tools.
        var program = await InstallAsync("private", UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var dryRun = await ServiceAsync(program, _root, uid: null, "--dry-run");
        Assert.True(dryRun.Exit == 0, dryRun.Printed);
        Assert.Contains($"without --dry-run, ws2sd service refuses: the service runs as a user of its own, and {Path.GetDirectoryName(program)} lets no other user in (mode 0700)", dryRun.Output);
        var install = await ServiceAsync(program, _root, uid: null);
        Assert.Equal(2, install.Exit);
        Assert.Contains("lets no other user in (mode 0700)", install.Errors);
        Assert.Contains("`dotnet tool install --tool-path /opt/ws2s ws2s`", install.Errors);
        Assert.Contains("`/opt/ws2s/ws2sd service`", install.Errors);
    }

    [SkippableFact]
    public async Task As_root_a_ws2sd_under_tmp_is_refused_because_the_service_gets_a_tmp_of_its_own()
    {
        NeedRoot();
        var folder = Directory.CreateTempSubdirectory("ws2s-service-tmp-").FullName;
        try
        {
            File.SetUnixFileMode(folder, (UnixFileMode)0b111_101_101);
            var copy = await Command.RunAsync("cp", ["-a", AppContext.BaseDirectory + ".", Path.Combine(folder, "ws2s")]);
            Assert.True(copy.Exit == 0, copy.Printed);
            var install = await ServiceAsync(Path.Combine(folder, "ws2s", "ws2sd"), _root, uid: null);
            Assert.Equal(2, install.Exit);
            Assert.Contains("which the service does not see (PrivateTmp=yes gives it a /tmp of its own)", install.Errors);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [SkippableFact]
    public async Task Arguments_reach_ws2sd_as_typed_through_systemds_quoting_and_an_apphosts_DOTNET_ROOT_comes_along()
    {
        NeedTools();
        var program = await InstallAsync("opt", (UnixFileMode)0b111_101_101);
        var odd = "/srv/ws2s 100%/$HOME's \"config\"\\.json";
        var run = await Command.RunAsync(program, ["service", "--dry-run", "--limits:idleTimeoutSeconds", "60", "--config", odd],
            environment: new Dictionary<string, string?> { ["HOME"] = _root, ["WS2S_CONFIG"] = null, ["DOTNET_ROOT"] = "/usr/share/dotnet" });
        var (_, unit) = DryRunUnit(run);
        Assert.Contains(("Environment", "DOTNET_ROOT=/usr/share/dotnet"), Settings(unit));
        var commands = await CommandsAsync(WriteUnit(unit, "quoting"));
        Assert.Equal([program, "run", "--log-format", "json", "--limits:idleTimeoutSeconds", "60", "--config", odd], Assert.Single(commands["ExecStart"]));
        // The first start writes the defaults where that ws2sd will read them.
        Assert.Equal(odd, Assert.Single(commands["ExecStartPre"])[^2]);

        // A log format the installer chose replaces the unit's JSON, rather than following it.
        var (_, text) = DryRunUnit(await ServiceAsync(program, _root, uid: null, "--dry-run", "--log-format", "text"));
        Assert.Contains(("ExecStart", $"{program} run --log-format text"), Settings(text));
    }

    /// <summary>
    /// Runs <paramref name="command"/> as the unit would: in a network namespace of its own (loopback up), as
    /// <paramref name="uid"/> with no capabilities and no new privileges, under the unit's UMask, system call filter
    /// and address families; for a system unit also with the file system read-only but /tmp (PrivateTmp= gives a
    /// writable one), /root, /home and /run/user hidden, and the configuration folder read-only.
    /// </summary>
    private async Task<WatchedProcess> SandboxedAsync(bool system, int uid, string home, string? readOnlyConfig,
        List<(string Key, string Value)> settings, string[] environment, string[] command)
    {
        var seccomp = await SeccompAsync(settings);
        var script = new StringBuilder("set -eu\nuid=$1; umask_=$2; config=$3; shift 3\nip link set lo up\n");
        if (system)
            script.Append("""
                mount --bind /tmp /tmp
                while read -r _ _ _ _ point options _; do
                  case "$point" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*|/tmp) continue;; esac
                  case ",$options," in *,ro,*) continue;; esac
                  mount -o remount,bind,ro "$point"
                done < /proc/self/mountinfo
                mount --bind "$config" "$config"
                mount -o remount,bind,ro "$config"
                for hidden in /root /home /run/user; do if [ -d "$hidden" ]; then mount -t tmpfs -o mode=000 tmpfs "$hidden"; fi; done
                for place in / /usr /etc /var "$config"; do if [ -w "$place" ]; then echo "sandbox: $place is writable" >&2; exit 97; fi; done

                """);
        script.Append("umask \"$umask_\"\nexec setpriv --reuid=\"$uid\" --regid=\"$uid\" --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs -- \"$@\"\n");
        var path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        return WatchedProcess.Start("unshare", ["--mount", "--net", "--fork", "--", "/bin/sh", "-c", script.ToString(), "sandbox",
            uid.ToString(), settings.Single(s => s.Key == "UMask").Value, readOnlyConfig ?? "-",
            "env", "-i", $"PATH={path}", $"HOME={home}", .. environment, .. seccomp, .. command]);
    }

    /// <summary>
    /// The unit's SystemCallFilter= (allow lists, then ~ deny lists, as systemd-analyze expands the groups; other calls fail
    /// with SystemCallErrorNumber=EPERM) and RestrictAddressFamilies=, loaded with libseccomp before the command runs.
    /// </summary>
    private async Task<string[]> SeccompAsync(List<(string Key, string Value)> settings)
    {
        Assert.Contains(("SystemCallErrorNumber", "EPERM"), settings);
        var allowed = new HashSet<string>();
        foreach (var (_, value) in settings.Where(s => s.Key == "SystemCallFilter"))
        {
            var deny = value.StartsWith('~');
            foreach (var item in value.TrimStart('~').Split(' ', StringSplitOptions.RemoveEmptyEntries))
                foreach (var call in await ExpandAsync(item))
                    if (deny) allowed.Remove(call);
                    else allowed.Add(call);
        }
        Assert.Contains("bind", allowed);
        Assert.DoesNotContain("setuid", allowed);
        var families = settings.Single(s => s.Key == "RestrictAddressFamilies").Value.Split(' ')
            .Select(f => f switch { "AF_UNIX" => 1, "AF_INET" => 2, "AF_INET6" => 10, "AF_NETLINK" => 16, _ => throw new NotSupportedException(f) });
        var folder = Path.Combine(_root, "seccomp");
        Directory.CreateDirectory(folder);
        File.SetUnixFileMode(folder, (UnixFileMode)0b111_101_101);
        await File.WriteAllTextAsync(Path.Combine(folder, "allowed"), string.Join('\n', allowed));
        await File.WriteAllTextAsync(Path.Combine(folder, "seccomp.py"), SeccompScript);
        return ["/usr/bin/python3", Path.Combine(folder, "seccomp.py"), Path.Combine(folder, "allowed"), string.Join(',', families)];
    }

    /// <summary>A system call group (<c>@system-service</c>) as systemd expands it, or one call.</summary>
    private static async Task<HashSet<string>> ExpandAsync(string item)
    {
        if (!item.StartsWith('@')) return [item];
        var listed = await Command.RunAsync("systemd-analyze", ["syscall-filter", item]);
        Assert.True(listed.Exit == 0, listed.Printed);
        var calls = new HashSet<string>();
        foreach (var line in listed.Output.Split('\n').Skip(1).Select(l => l.Split('#')[0].Trim()).Where(l => l.Length > 0))
            calls.UnionWith(await ExpandAsync(line));
        return calls;
    }

    /// <summary>Loads the filter with libseccomp (through ctypes: no package beyond python3 and libseccomp2, which systemd needs), then runs the command.</summary>
    private const string SeccompScript = """
        import ctypes, os, sys
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
        ALLOW, EPERM, SOCKET_REFUSED = 0x7fff0000, 0x00050000 | 1, 0x00050000 | 97  # SCMP_ACT_ERRNO(EPERM), (EAFNOSUPPORT)
        class Cmp(ctypes.Structure):
            _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("a", ctypes.c_uint64), ("b", ctypes.c_uint64)]
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(Cmp)]
        lib.seccomp_load.argtypes = [ctypes.c_void_p]
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        names, families, command = open(sys.argv[1]).read().split(), [int(f) for f in sys.argv[2].split(",")], sys.argv[3:]
        ctx = lib.seccomp_init(EPERM)
        socket = lib.seccomp_syscall_resolve_name(b"socket")
        for name in names:
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number < 0 or number == socket: continue  # not a call on this architecture; socket() by family below
            if lib.seccomp_rule_add_array(ctx, ALLOW, number, 0, None) != 0: sys.exit("seccomp: cannot allow " + name)
        for family in families:
            if lib.seccomp_rule_add_array(ctx, ALLOW, socket, 1, ctypes.byref(Cmp(0, 4, family, 0))) != 0: sys.exit("seccomp: socket rule")
        if lib.seccomp_load(ctx) != 0: sys.exit("seccomp: the filter did not load")
        os.execv(command[0], command)
        """;

    /// <summary>Asks the server inside the sandbox's network namespace, as a health check there would.</summary>
    private static async Task ProbeAsync(WatchedProcess sandbox, string program)
    {
        var probe = await Command.RunAsync("nsenter", [$"--net=/proc/{sandbox.Process.Id}/ns/net", "--", program, "probe", "http://127.0.0.1:3613/healthz"]);
        Assert.True(probe.Exit == 0, $"probe: {probe.Printed}\n{sandbox.Output}");
    }
}
