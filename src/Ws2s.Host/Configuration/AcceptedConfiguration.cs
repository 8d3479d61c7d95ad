using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using Ws2s.AspNetCore.Configuration;

namespace Ws2s.Host.Configuration;

/// <summary>
/// The configuration ws2sd has accepted: read and checked at start, and again at each reload that passed the same
/// checks (<see cref="ConfigReloader"/>). ws2s's options are bound from it; replacing it signals
/// <see cref="IOptionsMonitor{TOptions}"/>, which hands the new options to the library to take up whole.
/// A configuration that fails the checks never gets here.
/// </summary>
internal sealed class AcceptedConfiguration(LoadedConfig start, string path, string[] args) : IOptionsChangeTokenSource<Ws2sOptions>
{
    private volatile IConfigurationRoot _current = start.Root;
    private ConfigurationReloadToken _changed = new();

    /// <summary>What the server started with (ws2sd's listeners are fixed by it).</summary>
    public LoadedConfig Start => start;

    /// <summary>The file, and the command line read after it (both read again at each reload).</summary>
    public string Path => path;

    public string[] Args => args;

    /// <summary>The configuration ws2s's options are bound from now.</summary>
    public IConfiguration Current => _current;

    /// <summary>Makes <paramref name="next"/> the accepted configuration, and tells the options monitor (which calls back at once, on this thread).</summary>
    public void Replace(IConfigurationRoot next)
    {
        _current = next;
        Interlocked.Exchange(ref _changed, new ConfigurationReloadToken()).OnReload();
    }

    public string Name => Options.DefaultName;

    public IChangeToken GetChangeToken() => Volatile.Read(ref _changed);
}
