using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Ws2s.AspNetCore.Admission;
using Ws2s.AspNetCore.Configuration;
using Ws2s.AspNetCore.Connectors;
using Ws2s.AspNetCore.Sessions;
using Ws2s.AspNetCore.Telemetry;

namespace Ws2s.AspNetCore;

/// <summary><c>services.AddWs2s(…)</c>: what the ws2s endpoints need, with options validated at start and taken up whole on reload.</summary>
public static class Ws2sServiceCollectionExtensions
{
    /// <summary>
    /// Registers ws2s: its options (bound by <paramref name="configure"/>, validated when the application starts, each
    /// problem naming its key, and taken up again whenever <see cref="IOptionsMonitor{TOptions}"/> reports a change),
    /// admission, SSH logins, metrics (meter <c>Ws2s</c>), log redaction for the logger providers registered so far,
    /// and the connection gate and PROXY protocol for the listeners that ask for them
    /// (<see cref="Ws2sListenOptionsExtensions"/>). Then map the endpoints with <see cref="Ws2sEndpointRouteBuilderExtensions.MapWs2s"/>.
    /// </summary>
    /// <returns>A builder to add ws2s's pluggable parts: connectors, destination scopes.</returns>
    public static IWs2sBuilder AddWs2s(this IServiceCollection services, Action<Ws2sOptions>? configure)
    {
        var options = services.AddOptions<Ws2sOptions>();
        if (configure is not null) options.Configure(configure);
        services.TryAddSingleton<StartValidation>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<Ws2sOptions>, Ws2sOptionsValidator>());
        options.ValidateOnStart();
        services.TryAddSingleton<LiveConfiguration>();

        services.AddMetrics();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<Ws2sMetrics>();
        services.TryAddSingleton<AdmissionPolicy>();
        services.TryAddSingleton<Readiness>();
        // Read once at start (a reload reports them as needing a restart): the gate, trusted proxies, the queue budget, SSH logins.
        services.TryAddSingleton(sp =>
        {
            var limits = sp.GetRequiredService<LiveConfiguration>().Start.Limits;
            return new ConnectionGate(limits.MaxConnections ?? ConnectionGate.DefaultMaxConnections(),
                TimeSpan.FromSeconds(limits.HandshakeTimeoutSeconds), sp.GetRequiredService<TimeProvider>(),
                sp.GetRequiredService<Ws2sMetrics>(), sp.GetRequiredService<ILogger<ConnectionGate>>());
        });
        services.TryAddSingleton(sp => new TrustedProxies(sp.GetRequiredService<LiveConfiguration>().Start.TrustedProxies));
        services.TryAddSingleton<ProxyProtocol>();
        services.TryAddSingleton(sp =>
        {
            var budget = new QueueBudget(sp.GetRequiredService<LiveConfiguration>().Start.Limits.PendingBytesTotal());
            sp.GetRequiredService<Ws2sMetrics>().ObservePendingBytes(() => budget.Used);
            return budget;
        });
        services.TryAddSingleton(sp =>
        {
            var ssh = sp.GetRequiredService<LiveConfiguration>().Start.Ssh;
            return new Ssh.SshLogins(new Ssh.KnownHosts(ssh.KnownHosts, ssh.AcceptUnknownHostKeys),
                TimeSpan.FromSeconds(ssh.TimeoutSeconds), ssh.MaxSessionsPerClient, ssh.MaxKdfRounds);
        });
        AddSessions(services);
        AddGate(services);
        // The secrets of the options at start; LiveConfiguration replaces them on reload (it cannot be asked at each log
        // line: logging is what it needs to be built).
        services.TryAddSingleton(sp => new RedactedSecrets(TokenCheck.Configured(sp.GetRequiredService<IOptionsMonitor<Ws2sOptions>>().CurrentValue)));
        LogRedaction.Apply(services, sp => sp.GetRequiredService<RedactedSecrets>());
        return new Ws2sBuilder(services);
    }

    /// <summary>Registers ws2s with its options as they are bound elsewhere (or their defaults): see <see cref="AddWs2s(IServiceCollection, Action{Ws2sOptions}?)"/>.</summary>
    public static IWs2sBuilder AddWs2s(this IServiceCollection services) => services.AddWs2s(configure: null);

    /// <summary>What sessions share: the connectors (one per kind of peer), the runner's services.</summary>
    private static void AddSessions(IServiceCollection services)
    {
        // One connector per kind of peer (an application adds its own, or replaces one, with IWs2sBuilder.AddConnector).
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConnector, TcpConnector>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConnector, UnixConnector>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConnector, SshConnector>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConnector, UdpConnector>());
        services.TryAddSingleton(sp =>
        {
            var live = sp.GetRequiredService<LiveConfiguration>();
            return new ConnectorSet(sp.GetServices<IConnector>(), () => live.Current.TlsTrust);
        });
        services.TryAddSingleton(sp =>
        {
            var admission = sp.GetRequiredService<AdmissionPolicy>();
            var settings = new SettingsInForce(() => admission.Settings);
            admission.SettingsChanged += settings.Changed;
            return settings;
        });
        services.TryAddSingleton(sp =>
        {
            var live = sp.GetRequiredService<LiveConfiguration>();
            return new RunnerServices(() => live.Current.Limits, sp.GetRequiredService<TimeProvider>(),
                sp.GetRequiredService<QueueBudget>(), sp.GetRequiredService<ConnectorSet>(),
                sp.GetRequiredService<ILoggerFactory>(), sp.GetRequiredService<SettingsInForce>(), sp.GetRequiredService<AdmissionPolicy>(),
                sp.GetRequiredService<ResumeRegistry>(), new QueueBudget(live.Start.Resume.MaxBufferedBytesTotal ?? live.Start.Limits.PendingBytesTotal()));
        });
        services.TryAddSingleton(sp =>
        {
            var live = sp.GetRequiredService<LiveConfiguration>();
            return new ResumeRegistry(live.Start.Resume.Instance ?? ResumeRegistry.RandomInstance(), sp.GetRequiredService<TimeProvider>(),
                () => live.Current.Resume.MaxAttemptsPerMinute);
        });
        services.AddHostedService(sp => new MemoryRelief(sp.GetRequiredService<QueueBudget>(), sp.GetRequiredService<TimeProvider>()));
    }

    /// <summary>Marks a service collection whose transports carry the gate already.</summary>
    private sealed class GateAdded;

    /// <summary>
    /// The connection gate in the accept loop of the listeners that use it: every connection transport registered so far
    /// is wrapped (<see cref="GatedTransport"/>); and a connection is no longer silent once its first request arrives.
    /// </summary>
    private static void AddGate(IServiceCollection services)
    {
        if (services.Any(d => d.ServiceType == typeof(GateAdded))) return;
        services.AddSingleton<GateAdded>();
        services.TryAddSingleton<GatedEndpoints>();
        foreach (var descriptor in services.Where(d => d.ServiceType == typeof(IConnectionListenerFactory)).ToList())
        {
            var index = services.IndexOf(descriptor);
            services[index] = ServiceDescriptor.Singleton<IConnectionListenerFactory>(sp => new GatedTransport(
                Create(sp, descriptor), sp.GetRequiredService<ConnectionGate>(), sp.GetRequiredService<GatedEndpoints>()));
        }
        services.TryAddEnumerable(ServiceDescriptor.Transient<IStartupFilter, FirstRequest>());
    }

    private static IConnectionListenerFactory Create(IServiceProvider services, ServiceDescriptor descriptor) =>
        (IConnectionListenerFactory)(descriptor.ImplementationInstance
            ?? descriptor.ImplementationFactory?.Invoke(services)
            ?? ActivatorUtilities.CreateInstance(services, descriptor.ImplementationType!));

    /// <summary>Tells the gate, first thing in the app's pipeline, that a connection has made its first request (it is no longer silent).</summary>
    private sealed class FirstRequest(ConnectionGate gate) : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((context, after) =>
            {
                gate.Spoke(context.Connection.Id);
                return after(context);
            });
            next(app);
        };
    }

    /// <summary>
    /// Registers ws2s bound to the <paramref name="section"/> section of <paramref name="configuration"/> (an app's
    /// <c>"Ws2s": {…}</c> in appsettings.json, its environment variables and command line), taken up again when that
    /// configuration reloads. Its keys are checked before binding: a key nothing reads (a typo such as
    /// <c>destinatons</c>, which would leave the rule it meant unread) or a value of the wrong kind fails the start
    /// (or is refused on reload, the previous options staying in force) with its name, where it was set and the
    /// nearest known key, like every other problem of the options.
    /// </summary>
    public static IWs2sBuilder AddWs2s(this IServiceCollection services, IConfigurationRoot configuration, string section)
    {
        services.AddSingleton<IOptionsChangeTokenSource<Ws2sOptions>>(new ConfigurationChangeTokenSource<Ws2sOptions>(configuration.GetSection(section)));
        return services.AddWs2s(options =>
        {
            options.KeyProblems = Ws2sConfigKeys.Problems(configuration, section);
            if (options.KeyProblems.Count == 0) configuration.GetSection(section).Bind(options);
        });
    }

    /// <summary>
    /// Fails options with problems (each naming its key) until they have passed once, at start; from then on
    /// <see cref="LiveConfiguration"/> judges each reload itself, keeping the options in force when it refuses one.
    /// </summary>
    private sealed class Ws2sOptionsValidator(StartValidation validation) : IValidateOptions<Ws2sOptions>
    {
        public ValidateOptionsResult Validate(string? name, Ws2sOptions options)
        {
            if (validation.HasPassed) return ValidateOptionsResult.Success;
            var problems = options.Problems().ToList();
            return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
        }
    }
}
