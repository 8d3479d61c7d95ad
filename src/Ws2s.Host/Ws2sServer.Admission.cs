using Ws2s.AspNetCore.Admission;

namespace Ws2s.Host;

/// <summary><c>/.ws2s/admission</c>: why the server would refuse a page's upgrade, answered slowly enough not to be a token oracle.</summary>
public static partial class Ws2sServer
{
    /// <summary>
    /// Maps <c>/.ws2s/admission</c> (the WebSocket API hides an upgrade's status: the console and ws2s.js ask here). The token
    /// comes in a header, never in the URL (nor in any log line); a page of an origin allowed to open sessions may read the
    /// answer from its own origin (CORS), no other page may. To a client it admits, the answer also says where Wisp is served
    /// (<paramref name="wispPath"/>; none when empty), so that a client can choose it (ws2s.js's directSockets).
    /// </summary>
    private static void MapAdmissionQuestions(WebApplication app, string? wispPath)
    {
        // CORS for pages of allowed origins only.
        static bool AllowCrossOrigin(HttpContext context, AdmissionPolicy admission)
        {
            if (context.Request.Headers.Origin.FirstOrDefault() is not { } origin || !admission.AllowsOrigin(origin)) return false;
            context.Response.Headers.AccessControlAllowOrigin = origin;
            context.Response.Headers.Vary = "Origin";
            return true;
        }
        app.MapMethods("/.ws2s/admission", ["OPTIONS"], (HttpContext context, AdmissionPolicy admission) =>
        {
            if (!AllowCrossOrigin(context, admission)) return Results.StatusCode(StatusCodes.Status403Forbidden);
            context.Response.Headers.AccessControlAllowMethods = "GET";
            context.Response.Headers.AccessControlAllowHeaders = "X-Ws2s-Token, X-Ws2s-Origin";
            context.Response.Headers.AccessControlMaxAge = "600";
            return Results.NoContent();
        }).RequireRateLimiting(AdmissionQuestions);
        app.MapGet("/.ws2s/admission", async (HttpContext context, AdmissionPolicy admission) =>
        {
            AllowCrossOrigin(context, admission);
            var headers = context.Request.Headers;
            var (status, refusal) = await admission.ExplainAsync(
                headers["X-Ws2s-Origin"].FirstOrDefault() ?? headers.Origin.FirstOrDefault(), headers["X-Ws2s-Token"].FirstOrDefault());
            context.Response.Headers.CacheControl = "no-store";
            return status == StatusCodes.Status200OK && wispPath is { Length: > 0 }
                ? Results.Json(new { status, refusal, wisp = wispPath })
                : Results.Json(new { status, refusal });
        }).RequireRateLimiting(AdmissionQuestions);
    }

    /// <summary>The rate limit policy of <c>/.ws2s/admission</c>: a burst of 10 questions per client, then 2 a second.</summary>
    private const string AdmissionQuestions = "admission-questions";

    /// <summary>
    /// Answers to <c>/.ws2s/admission</c> say whether a token would be admitted: an oracle for guessing
    /// tokens unless it is slow. Per client address (after PROXY/X-Forwarded-For from trusted proxies).
    /// </summary>
    private static void AddAdmissionRateLimit(IServiceCollection services) => services.AddRateLimiter(limiter =>
    {
        limiter.AddPolicy(AdmissionQuestions, context => System.Threading.RateLimiting.RateLimitPartition.GetTokenBucketLimiter(
            ClientAddress.Of(context).ToString(), _ => new System.Threading.RateLimiting.TokenBucketRateLimiterOptions
            {
                TokenLimit = 10,
                TokensPerPeriod = 2,
                ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                QueueLimit = 0,
                AutoReplenishment = true,
            }));
        limiter.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
        limiter.OnRejected = async (rejected, cancel) =>
        {
            rejected.HttpContext.Response.Headers.RetryAfter = "1";
            await rejected.HttpContext.Response.WriteAsync("ws2s: too many admission questions from this client; try again in a second\n", cancel);
        };
    });
}
