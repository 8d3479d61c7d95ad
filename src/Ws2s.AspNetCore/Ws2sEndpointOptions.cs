namespace Ws2s.AspNetCore;

/// <summary>How one ws2s endpoint narrows the sessions it opens (from the request: its user, a claim…).</summary>
public sealed class Ws2sEndpointOptions
{
    /// <summary>
    /// Destination rules for the session being opened, in the syntax of <c>destinations.allow</c>
    /// (<c>10.1.2.3:6379</c>, <c>*.redis.example</c>, <c>10.0.0.0/8:5432</c>…), or null for no narrowing.
    /// The session may reach only what these allow <em>and</em> the server's own policy allows: a
    /// scope never widens the policy nor lifts its refusal of private ranges. An empty list allows nothing.
    /// </summary>
    public Func<HttpContext, IEnumerable<string>?>? Destinations { get; set; }
}
