namespace Ws2s.Host.Tests;

/// <summary>Paths in the repository the tests read (the spec's vectors, the built server).</summary>
public static class Repository
{
    public static string Root { get; } = FindRoot();

    public static string Vectors => Path.Combine(Root, "spec", "vectors");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Ws2s.sln"))) return dir.FullName;
        throw new InvalidOperationException("Ws2s.sln not found above the test binaries");
    }
}
