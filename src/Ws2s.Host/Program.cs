using System.Reflection;
using Ws2s.Host;
using Ws2s.Host.Configuration;

// ws2sd [run] [--config PATH] [--key:path value …] | start | stop | restart | status | reload | service | probe URL | help | --version
if (args.Contains("--version"))
{
    Console.WriteLine($"ws2sd {typeof(Ws2sServer).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]}");
    return 0;
}
if (args is ["probe", var url])
{
    // A health check for images without curl: exit 0 when the URL answers 2xx.
    using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
    try
    {
        return (await http.GetAsync(url)).IsSuccessStatusCode ? 0 : 1;
    }
    catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
    {
        return 1;
    }
}
if (args.Contains("--help") || args.Contains("-h") || args is ["help", ..])
{
    Console.WriteLine(Daemon.Help);
    return 0;
}
switch (args.FirstOrDefault())
{
    case "start": return await Daemon.StartAsync(args[1..]);
    case "stop": return await Daemon.StopAsync(args[1..]);
    case "restart":
        await Daemon.StopAsync(args[1..]);
        return await Daemon.StartAsync(args[1..]);
    case "status": return await Daemon.StatusAsync();
    case "reload": return Daemon.Reload();
    case "service": return Daemon.Service(args[1..]);
}

// run (the default): in the foreground, or as the background server `ws2sd start` launched
// (--log-file: all output to a rotating file; --pid-file: this home's lock held for life, the pid file
// written once listening and removed on exit). Neither follows a symbolic link: a linked folder or log
// is refused, a linked pid file replaced.
var (runArgs, logFile, pidFile) = RunOptions(args.Where(a => a != "run").ToArray());
if (NoFollow.Refusal(new[] { logFile, pidFile }.OfType<string>().Select(f => Path.GetDirectoryName(Path.GetFullPath(f))!)) is { } linked)
{
    Console.Error.WriteLine($"ws2s: {linked}");
    return Daemon.Refused;
}
if (logFile is not null)
{
    TextWriter log;
    try
    {
        log = TextWriter.Synchronized(new RotatingLog(logFile));
    }
    catch (LinkRefusedException e)
    {
        Console.Error.WriteLine($"ws2s: {e.Message}");
        return Daemon.Refused;
    }
    Console.SetOut(log);
    Console.SetError(log);
}
Microsoft.Win32.SafeHandles.SafeFileHandle? instance = null;
try
{
    if (pidFile is not null)
    {
        instance = InstanceLock.Take(Daemon.LockFileOf(pidFile));
        if (instance is null)
        {
            Console.Error.WriteLine($"ws2s: another ws2sd holds {Daemon.LockFileOf(pidFile)} (pid {InstanceLock.Holder(Daemon.LockFileOf(pidFile))}): already running");
            return 1;
        }
    }
    var app = Ws2sServer.Build(runArgs);
    if (pidFile is not null)
    {
        var self = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        app.Lifetime.ApplicationStarted.Register(() => WritePidFile(pidFile,
            [self, Ws2sServer.ListeningUrls(app).FirstOrDefault() ?? "", Ws2sServer.ManagementUrl(app)?.ToString() ?? ""]));
        app.Lifetime.ApplicationStopped.Register(() =>
        {
            try
            {
                if (NoFollow.ReadAllLines(pidFile)?.FirstOrDefault() == self) File.Delete(pidFile);
            }
            catch (LinkRefusedException)
            {
                // Not ours: a link planted after we wrote the file; left alone.
            }
        });
    }
    await app.RunAsync();
    return 0;
}
catch (LinkRefusedException e)
{
    Console.Error.WriteLine($"ws2s: {e.Message}");
    return Daemon.Refused;
}
catch (ConfigException e)
{
    Console.Error.WriteLine($"ws2s: config error: {e.Message}");
    return 2;
}
catch (IOException e) when (e.InnerException is System.Net.Sockets.SocketException)
{
    Console.Error.WriteLine($"ws2s: cannot listen: {e.Message}");
    return 2;
}
finally
{
    instance?.Dispose(); // the lock is released here, or by the kernel however the process ends
}

/// <summary>
/// Writes the pid file without ever writing through a link: into a new file next to it (created
/// exclusively, not following links), then renamed over it, which replaces whatever is there, a link included.
/// </summary>
static void WritePidFile(string path, string[] lines)
{
    var temporary = $"{path}.{Environment.ProcessId}.tmp";
    File.Delete(temporary);
    using (var file = new StreamWriter(NoFollow.CreateNew(temporary)))
        foreach (var line in lines) file.Write(line + "\n");
    File.Move(temporary, path, overwrite: true);
}

/// <summary>Takes <c>--log-file PATH</c> and <c>--pid-file PATH</c> out of the run arguments.</summary>
static (string[] Remaining, string? LogFile, string? PidFile) RunOptions(string[] args)
{
    var rest = new List<string>();
    string? log = null, pid = null;
    for (var i = 0; i < args.Length; i++)
    {
        if (args[i] == "--log-file" && i + 1 < args.Length) log = args[++i];
        else if (args[i] == "--pid-file" && i + 1 < args.Length) pid = args[++i];
        else rest.Add(args[i]);
    }
    return ([.. rest], log, pid);
}
