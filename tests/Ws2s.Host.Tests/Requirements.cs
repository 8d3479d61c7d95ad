namespace Ws2s.Host.Tests;

/// <summary>
/// Programs some tests need (Debian packages that .ci/run installs). On a developer machine without
/// one, those tests are skipped with the reason; under CI (CI=true) a missing one is a failure.
/// </summary>
public static class Requirements
{
    public static void Need(string path, string package)
    {
        if (File.Exists(path)) return;
        var why = $"{path} is missing: apt-get install {package}";
        Assert.False(Environment.GetEnvironmentVariable("CI") == "true", why);
        Skip.If(true, why);
    }
}
