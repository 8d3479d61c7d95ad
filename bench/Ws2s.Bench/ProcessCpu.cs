namespace Ws2s.Bench;

/// <summary>Memory of a process, from /proc.</summary>
internal static class ProcessMemory
{
    /// <summary>Resident set size of <paramref name="pid"/> and its descendants (a server may run a process per core), in bytes.</summary>
    public static long Rss(int pid) =>
        ProcessCpu.Tree(pid).Sum(p =>
        {
            try
            {
                foreach (var line in File.ReadLines($"/proc/{p}/status"))
                    if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
            }
            catch (IOException)
            {
            }
            return 0L;
        });
}

/// <summary>CPU time of a process and its children, from /proc (the bench client shares the machine, so only the server's own time is the server's cost).</summary>
internal static class ProcessCpu
{
    /// <summary>sysconf(_SC_CLK_TCK): 100 on Linux.</summary>
    private const double ClockTicksPerSecond = 100;

    /// <summary>
    /// User + system time of <paramref name="pid"/>, of its children that ended (cutime + cstime), and
    /// of its descendants still running (a forking server such as websockify serves each connection in
    /// a child), in seconds.
    /// </summary>
    public static double TreeSeconds(int pid)
    {
        var ticks = 0.0;
        foreach (var process in Tree(pid))
        {
            // It may end meanwhile: its parent's cutime has it once reaped. After the command name: utime is the 12th
            // field, stime the 13th, cutime the 14th, cstime the 15th.
            if (Fields(process) is { } fields)
                ticks += double.Parse(fields[11]) + double.Parse(fields[12]) + double.Parse(fields[13]) + double.Parse(fields[14]);
        }
        return ticks / ClockTicksPerSecond;
    }

    private static string[]? Fields(int pid)
    {
        try
        {
            // The command name may hold spaces: split after its closing parenthesis.
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary><paramref name="pid"/> and its descendants still running.</summary>
    public static IEnumerable<int> Tree(int pid)
    {
        var pending = new Stack<int>([pid]);
        while (pending.TryPop(out var next))
        {
            yield return next;
            foreach (var child in Children(next)) pending.Push(child);
        }
    }

    private static IEnumerable<int> Children(int pid)
    {
        string text;
        try
        {
            text = string.Join(' ', Directory.EnumerateDirectories($"/proc/{pid}/task")
                .Select(task => File.ReadAllText(Path.Combine(task, "children"))));
        }
        catch (IOException)
        {
            return [];
        }
        return text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse);
    }
}
