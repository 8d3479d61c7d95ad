using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Ws2s.AspNetCore.Admission;
using Ws2s.AspNetCore.Configuration;
using Ws2s.AspNetCore.Sessions;
using Ws2s.AspNetCore.Telemetry;
using Ws2s.AspNetCore.Websockify;

namespace Ws2s.AspNetCore;

/// <summary><c>services.AddWs2s(…)</c>: what the ws2s endpoints need, with options validated at start.</summary>
public static class Ws2sServiceCollectionExtensions
{
    /// <summary>
    /// Registers ws2s: its options (bound by <paramref name="configure"/>, validated when the host
    /// starts, each problem naming its key), admission, SSH sessions, metrics (meter
    /// <c>Ws2s</c>) and log redaction for the logger providers registered so far. Then map the
    /// endpoints with <see cref="Ws2sEndpointRouteBuilderExtensions.MapWs2s"/>.
    /// </summary>
    public static IServiceCollection AddWs2s(this IServiceCollection services, Action<Ws2sOptions>? configure = null)
    {
        var options = services.AddOptions<Ws2sOptions>();
        if (configure is not null) options.Configure(configure);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<Ws2sOptions>, Ws2sOptionsValidator>());
        options.ValidateOnStart();
        services.TryAddSingleton(sp => sp.GetRequiredService<IOptions<Ws2sOptions>>().Value);

        services.AddMetrics();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<Ws2sMetrics>();
        services.TryAddSingleton<AdmissionPolicy>();
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<Ws2sOptions>();
            return new RawTargets(o.RawTargets, o.RawTokenFile);
        });
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<Ws2sOptions>();
            return new ConnectionGate(o.Limits.MaxConnections ?? ConnectionGate.DefaultMaxConnections(),
                TimeSpan.FromSeconds(o.Limits.HandshakeTimeoutSeconds), sp.GetRequiredService<TimeProvider>(),
                sp.GetRequiredService<Ws2sMetrics>(), sp.GetRequiredService<ILogger<ConnectionGate>>());
        });
        services.TryAddSingleton(sp => new TrustedProxies(sp.GetRequiredService<Ws2sOptions>().TrustedProxies));
        services.TryAddSingleton<ProxyProtocol>();
        services.TryAddSingleton<Readiness>();
        services.TryAddSingleton(sp =>
        {
            var budget = new QueueBudget(sp.GetRequiredService<Ws2sOptions>().Limits.PendingBytesTotal());
            sp.GetRequiredService<Ws2sMetrics>().ObservePendingBytes(() => budget.Used);
            return budget;
        });
        services.TryAddSingleton(sp => new Connectors.TlsTrust(sp.GetRequiredService<Ws2sOptions>().Tls.TrustedCertificates));
        // One connector per kind of peer (an application adds its own, or replaces one, the same way).
        services.TryAddEnumerable(ServiceDescriptor.Singleton<Connectors.IConnector, Connectors.TcpConnector>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<Connectors.IConnector, Connectors.UnixConnector>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<Connectors.IConnector, Connectors.SshConnector>());
        services.TryAddSingleton<Connectors.ConnectorSet>();
        services.TryAddSingleton(sp => new RunnerServices(sp.GetRequiredService<Ws2sOptions>(), sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<QueueBudget>(), sp.GetRequiredService<Connectors.ConnectorSet>(),
            sp.GetRequiredService<ILoggerFactory>(), () => sp.GetRequiredService<AdmissionPolicy>().Settings));
        services.AddHostedService(sp => new MemoryRelief(sp.GetRequiredService<QueueBudget>(), sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<Ws2sOptions>();
            return new Ssh.SshLogins(new Ssh.KnownHosts(o.Ssh.KnownHosts, o.Ssh.AcceptUnknownHostKeys),
                TimeSpan.FromSeconds(o.Ssh.TimeoutSeconds), o.Ssh.MaxSessionsPerClient, o.Ssh.MaxKdfRounds);
        });
        services.TryAddSingleton(sp => new RedactedSecrets(TokenCheck.Configured(sp.GetRequiredService<Ws2sOptions>())));
        services.TryAddSingleton(sp => new Ws2sReload(sp.GetRequiredService<Ws2sOptions>(), sp.GetRequiredService<AdmissionPolicy>(),
            sp.GetRequiredService<RawTargets>(), sp.GetRequiredService<RunnerServices>(), sp.GetRequiredService<RedactedSecrets>()));
        LogRedaction.Apply(services, sp => sp.GetRequiredService<RedactedSecrets>());
        return services;
    }

    /// <summary>
    /// Registers ws2s bound to the <paramref name="section"/> section of <paramref name="configuration"/> (an app's
    /// <c>"Ws2s": {…}</c> in appsettings.json, its environment variables and command line). Its keys are checked when
    /// the host starts, before binding: a key nothing reads (a typo such as <c>destinatons</c>, which would leave the
    /// rule it meant unread) or a value of the wrong kind fails the start with its name, where it was set and the
    /// nearest known key, like every other problem of the options.
    /// </summary>
    public static IServiceCollection AddWs2s(this IServiceCollection services, IConfigurationRoot configuration, string section) =>
        services.AddWs2s(options =>
        {
            var problems = Ws2sConfigKeys.Problems(configuration, section);
            if (problems.Count > 0) throw new OptionsValidationException(Options.DefaultName, typeof(Ws2sOptions), problems);
            configuration.GetSection(section).Bind(options);
        });

    /// <summary>Every problem <see cref="Ws2sOptions.Problems"/> finds fails validation, each naming its key.</summary>
    private sealed class Ws2sOptionsValidator : IValidateOptions<Ws2sOptions>
    {
        public ValidateOptionsResult Validate(string? name, Ws2sOptions options)
        {
            var problems = options.Problems().ToList();
            return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
        }
    }
}
