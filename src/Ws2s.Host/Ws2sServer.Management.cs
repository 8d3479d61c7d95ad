using OpenTelemetry.Metrics;
using Ws2s.AspNetCore.Telemetry;

namespace Ws2s.Host;

/// <summary>The management endpoints: /healthz, /readyz and /metrics, marked so that only the management port serves them when it is set.</summary>
public static partial class Ws2sServer
{
    private static void MapManagement(WebApplication app)
    {
        app.MapGet("/healthz", () => Results.Text("ok\n")).WithMetadata(ManagementEndpoint.Instance);
        app.MapGet("/readyz", (Readiness readiness) =>
            readiness.Draining ? Results.Text("draining\n", statusCode: StatusCodes.Status503ServiceUnavailable) : Results.Text("ready\n"))
            .WithMetadata(ManagementEndpoint.Instance);
        app.MapPrometheusScrapingEndpoint("/metrics").WithMetadata(ManagementEndpoint.Instance);
    }

    /// <summary>Marks /healthz (alive), /readyz (503 while draining) and /metrics (Prometheus): the management endpoints.</summary>
    private sealed class ManagementEndpoint
    {
        public static readonly ManagementEndpoint Instance = new();
    }

    /// <summary>A path the router may take for a management endpoint (any case, a trailing slash): let through to routing, which decides.</summary>
    private static bool LooksLikeManagement(PathString path) =>
        (path.Value ?? "").TrimEnd('/').ToLowerInvariant() is "/healthz" or "/readyz" or "/metrics";
}
