using System.Reflection;
using Microsoft.Extensions.Configuration;
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
if (CommandLine.Problem(args) is { } mistake)
{
    Say($"ws2sd: {mistake}\n{CommandLine.Usage}\n(ws2sd help lists the commands and options)");
    return 2;
}
// A background or installed server would only meet its configuration's problems in a log: say them here, now.
if (args.FirstOrDefault() is "start" or "restart" or "service" && ConfigProblem(args[1..].Where(a => a != "--dry-run").ToArray(),
        args[0] == "service" && Environment.UserName == "root") is { } refused)
{
    Say(refused);
    return 2;
}
switch (args.FirstOrDefault())
{
    case "start": return await Daemon.StartAsync(args[1..]);
    case "stop": return await Daemon.StopAsync(args[1..]);
    case "restart":
        await Daemon.StopAsync(args[1..]);
        return await Daemon.StartAsync(args[1..]);
    case "status": return await Daemon.StatusAsync();
    case "reload": return await Daemon.ReloadAsync();
    case "service": return Daemon.Service(args[1..]);
}

// run (the default): in the foreground, or as the background server `ws2sd start` launched
// (--log-file: all output to a rotating file; --pid-file: this home's lock held for life, the pid file
// written once listening and removed on exit). Neither follows a symbolic link: a linked folder or log
// is refused, a linked pid file replaced.
var (runArgs, logFile, pidFile) = RunOptions(args.Where(a => a != "run").ToArray());
if (NoFollow.Refusal(new[] { logFile, pidFile }.OfType<string>().Select(f => Path.GetDirectoryName(Path.GetFullPath(f))!)) is { } linked)
{
    Say($"ws2s: {linked}");
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
        Say($"ws2s: {e.Message}");
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
            Say($"ws2s: another ws2sd holds {Daemon.LockFileOf(pidFile)} (pid {InstanceLock.Holder(Daemon.LockFileOf(pidFile))}): already running");
            return 1;
        }
    }
    // Under `ws2sd start`, each reload's outcome is written beside the pid file, where `ws2sd reload` waits for it.
    var app = Ws2sServer.Build(runArgs, pidFile is null ? null : services => services.AddSingleton(new ReloadReport(Daemon.ReloadFileOf(pidFile))));
    if (pidFile is not null)
    {
        var self = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        app.Lifetime.ApplicationStarted.Register(() => NoFollow.ReplaceLines(pidFile,
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
    Say($"ws2s: {e.Message}");
    return Daemon.Refused;
}
catch (ConfigException e)
{
    Say(ConfigWords(e));
    return 2;
}
catch (IOException e) when (e.InnerException is System.Net.Sockets.SocketException or Microsoft.AspNetCore.Connections.AddressInUseException)
{
    Say($"ws2s: cannot listen: {e.Message}" + (e.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException
        ? ": another program listens there (another ws2sd? `ws2sd status` says, `ws2sd stop` stops it); or choose another port: "
          + "listen.port in the config, or --listen:port 4000 (0 picks a free one)"
        : ""));
    return 2;
}
finally
{
    instance?.Dispose(); // the lock is released here, or by the kernel however the process ends
}

/// <summary>
/// The configuration's problems as ws2sd would meet them, or null when it would start. <paramref name="systemService"/>:
/// for the system unit `ws2sd service` installs as root, which reads /etc/ws2s/config.json (or --config), not root's home.
/// </summary>
static string? ConfigProblem(string[] args, bool systemService)
{
    var path = systemService ? ServiceUnit.ConfigPath(args) : ConfigFile.Locate(args);
    if (!File.Exists(path)) return null; // the server (or the unit) writes the defaults there when it starts
    try
    {
        ConfigFile.Read(new ConfigurationBuilder(), path, args);
        return null;
    }
    catch (ConfigException e)
    {
        return ConfigWords(e);
    }
}

static string ConfigWords(ConfigException e) => e.Problems.Count == 1
    ? $"ws2s: config error: {e.Problems[0]}"
    : "ws2s: config errors:" + string.Concat(e.Problems.Select(p => $"\n  {p}"));

/// <summary>
/// Tells the person (or the log collector) why ws2sd stops: a plain line on stderr, or with JSON logs
/// (<c>--log-format json</c>, or <c>logFormat</c> in the environment or config) a JSON object like every other line.
/// </summary>
void Say(string words)
{
    if (!JsonLogs(args)) Console.Error.WriteLine(words);
    else Console.Error.WriteLine(System.Text.Json.JsonSerializer.Serialize(new
    {
        Timestamp = DateTime.UtcNow.ToString(Ws2sServer.JsonTimestamp, System.Globalization.CultureInfo.InvariantCulture),
        EventId = 0,
        LogLevel = "Critical",
        Category = "ws2sd",
        Message = words,
    }, new System.Text.Json.JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
}

/// <summary>Whether the logs are JSON, read leniently: a configuration too broken to read still says which format it wants.</summary>
static bool JsonLogs(string[] args)
{
    for (var i = 0; i < args.Length; i++)
        if ((args[i] == "--log-format" && i + 1 < args.Length && args[i + 1].Equals("json", StringComparison.OrdinalIgnoreCase))
            || args[i].Equals("--log-format=json", StringComparison.OrdinalIgnoreCase))
            return true;
    try
    {
        var configuration = new ConfigurationBuilder().AddJsonFile(ConfigFile.Locate(args), optional: true).AddEnvironmentVariables("WS2S_").Build();
        return string.Equals(configuration["logFormat"], "json", StringComparison.OrdinalIgnoreCase);
    }
    catch (Exception e) when (e is InvalidDataException or FormatException or IOException or UnauthorizedAccessException)
    {
        return false;
    }
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
