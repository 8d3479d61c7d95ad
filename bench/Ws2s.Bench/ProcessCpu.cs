namespace Ws2s.Bench;

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
        var pending = new Stack<int>([pid]);
        while (pending.TryPop(out var next))
        {
            var fields = Fields(next);
            if (fields is null) continue; // it ended meanwhile: its parent's cutime has it once reaped
            // After the command name: utime is the 12th field, stime the 13th, cutime the 14th, cstime the 15th.
            ticks += double.Parse(fields[11]) + double.Parse(fields[12]) + double.Parse(fields[13]) + double.Parse(fields[14]);
            foreach (var child in Children(next)) pending.Push(child);
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
