namespace Ws2s.Host.Tests;

/// <summary>
/// Packages from the npm registry (the one network this machine has: code nobody here wrote, such as wisp-js and
/// libcurl.js), each installed once per test run into a folder of its own. Skipped where npm cannot reach the registry;
/// under CI (CI=true) that is a failure.
/// </summary>
public static class Npm
{
    private static readonly SemaphoreSlim Installing = new(1, 1);
    private static readonly Dictionary<string, string> Installed = [];

    /// <summary>The node_modules folder holding <paramref name="package"/> (name@version).</summary>
    public static async Task<string> InstallAsync(string package)
    {
        Requirements.Need("/usr/bin/npm", "npm");
        await Installing.WaitAsync();
        try
        {
            if (Installed.TryGetValue(package, out var known)) return known;
            var folder = Directory.CreateTempSubdirectory("ws2s-npm-").FullName;
            var install = await Command.RunAsync("npm", ["install", "--prefix", folder, "--no-save", "--no-package-lock", "--silent", package]);
            Skip.If(install.Exit != 0 && Environment.GetEnvironmentVariable("CI") != "true", $"npm could not install {package} here: {install.Printed}");
            Assert.True(install.Exit == 0, install.Printed);
            return Installed[package] = Path.Combine(folder, "node_modules");
        }
        finally
        {
            Installing.Release();
        }
    }
}
