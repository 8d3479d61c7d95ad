namespace Ws2s.AspNetCore.Telemetry;

/// <summary>Ready until the server starts stopping: then /readyz says 503 so a load balancer drains it.</summary>
internal sealed class Readiness
{
    public Readiness(IHostApplicationLifetime lifetime) => lifetime.ApplicationStopping.Register(() => Draining = true);

    public bool Draining { get; private set; }
}
