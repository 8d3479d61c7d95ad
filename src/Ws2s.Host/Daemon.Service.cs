using System.Diagnostics;

namespace Ws2s.Host;

/// <summary><c>ws2sd service</c>: the systemd unit (<see cref="ServiceUnit"/>) written and enabled, or printed with <c>--dry-run</c>.</summary>
internal static partial class Daemon
{
    /// <summary>
    /// Installs, enables and starts a systemd unit (<see cref="ServiceUnit"/>): as root a sandboxed system service
    /// under a user of its own, else a user service; <c>--dry-run</c> prints it. A system service that could not
    /// run the ws2sd it was made for (under /root, say) is refused with the way to install ws2s where it can.
    /// </summary>
    public static int Service(string[] args)
    {
        var dryRun = args.Contains("--dry-run");
        var rest = args.Where(a => a != "--dry-run").ToArray();
        var system = Environment.UserName == "root";
        var unitPath = system ? "/etc/systemd/system/ws2sd.service"
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config", "systemd", "user", "ws2sd.service");
        var command = Self();
        // An apphost finds .NET through DOTNET_ROOT when it is not where .NET is installed by default: so will the service.
        var dotnetRoot = Path.GetFileNameWithoutExtension(command[0]) != "dotnet" && Environment.GetEnvironmentVariable("DOTNET_ROOT") is { Length: > 0 } root ? root : null;
        var unit = ServiceUnit.Text(command, rest, system, dotnetRoot);
        var unreachable = system
            ? ServiceUnit.Unreachable(command.Append(Path.GetDirectoryName(typeof(object).Assembly.Location)!).Concat(dotnetRoot is null ? [] : [dotnetRoot]))
            : null;
        var cannotRun = unreachable is null ? null
            : $"the service runs as a user of its own, and {unreachable}. Install ws2s where every user may read it, then run that copy: " +
              "`dotnet tool install --tool-path /opt/ws2s ws2s` (--add-source ./nupkg for a local build) and `/opt/ws2s/ws2sd service`";
        var systemctl = system ? "systemctl" : "systemctl --user";
        var hasSystemd = Directory.Exists("/run/systemd/system");
        if (dryRun)
        {
            Console.WriteLine($"would write {unitPath}:\n\n{unit}\nthen run: {systemctl} daemon-reload && {systemctl} enable --now ws2sd");
            if (cannotRun is not null) Console.WriteLine($"(without --dry-run, ws2sd service refuses: {cannotRun})");
            if (!hasSystemd) Console.WriteLine("(systemd is not running on this machine: without --dry-run, ws2sd service refuses)");
            return 0;
        }
        if (cannotRun is not null)
        {
            Console.Error.WriteLine($"ws2sd service: {cannotRun}");
            return 2;
        }
        if (!hasSystemd)
        {
            Console.Error.WriteLine("ws2sd service: systemd is not running on this machine (no /run/systemd/system). " +
                "Start ws2sd with `ws2sd start`, or write a unit for your init system (deploy/ws2sd.service is one).");
            return 2;
        }
        Directory.CreateDirectory(Path.GetDirectoryName(unitPath)!);
        File.WriteAllText(unitPath, unit);
        foreach (var step in new[] { "daemon-reload", "enable --now ws2sd" })
        {
            var info = new ProcessStartInfo("systemctl");
            if (!system) info.ArgumentList.Add("--user");
            foreach (var word in step.Split(' ')) info.ArgumentList.Add(word);
            using var run = Process.Start(info)!;
            run.WaitForExit();
            if (run.ExitCode != 0)
            {
                Console.Error.WriteLine($"ws2sd service: `{systemctl} {step}` failed (exit code {run.ExitCode}); {(system ? "journalctl -u ws2sd" : "journalctl --user -u ws2sd")} says why");
                return 2;
            }
        }
        Console.WriteLine(system
            ? $"installed {unitPath} and started ws2sd: configuration {ServiceUnit.ConfigPath(rest)}, log `journalctl -u ws2sd`, state `systemctl status ws2sd`"
            : $"installed {unitPath} and started ws2sd: configuration ~/.ws2s/config.json, log `journalctl --user -u ws2sd`; " +
              "it stops when you log out unless you run `loginctl enable-linger`");
        return 0;
    }
}
