using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Ws2s.AspNetCore;

namespace Ws2s.Sample;

/// <summary>
/// The sample application: users sign in (POST /login) and get a cookie; /ws2s admits signed-in users
/// only (the app's own authorization: 401 otherwise), and narrows each session to the destinations
/// configured for its user. The server-wide policy (section <c>Ws2s</c>) still applies on top. Its listeners
/// have ws2s's connection gate and PROXY protocol support, as ws2sd's do.
/// </summary>
public static class SampleApp
{
    /// <summary>A user of this app: a password (a real app checks a hash in its database) and where ws2s may take them.</summary>
    public sealed class User
    {
        public string Password { get; set; } = "";
        public List<string> Destinations { get; set; } = [];
    }

    public static WebApplication Build(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        var users = builder.Configuration.GetSection("Users").Get<Dictionary<string, User>>() ?? [];

        builder.Services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme)
            .AddCookie(cookie =>
            {
                cookie.Cookie.SameSite = SameSiteMode.Strict;
                // An API answers 401, not a redirect to a login page.
                cookie.Events.OnRedirectToLogin = context =>
                {
                    context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                    return Task.CompletedTask;
                };
            });
        builder.Services.AddAuthorization();
        // The "Ws2s" section of the app's configuration; a key in it that ws2s does not know stops the start, named.
        // A change to the section while the app runs (appsettings.json is watched) applies to new sessions.
        builder.Services.AddWs2s(builder.Configuration, "Ws2s");
        // Every listener (--urls included) with ws2s's connection gate (limits.maxConnections; a connection silent for
        // limits.handshakeTimeoutSeconds is closed) and, from the load balancers in Ws2s:trustedProxies, the PROXY protocol.
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.ConfigureEndpointDefaults(listen => listen.UseWs2sGate().UseWs2sProxyProtocol()));

        var app = builder.Build();
        app.UseAuthentication();
        app.UseAuthorization();

        app.MapPost("/login", async (HttpContext context) =>
        {
            var form = await context.Request.ReadFormAsync();
            var name = form["user"].ToString();
            if (!users.TryGetValue(name, out var user) || !string.Equals(user.Password, form["password"].ToString(), StringComparison.Ordinal))
                return Results.Unauthorized();
            var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, name)], CookieAuthenticationDefaults.AuthenticationScheme);
            await context.SignInAsync(new ClaimsPrincipal(identity));
            return Results.NoContent();
        }).DisableAntiforgery();

        // ws2s behind the app's own authorization; each session reaches only its user's destinations.
        app.MapWs2s("/ws2s", ws2s => ws2s.Destinations = context =>
                users.TryGetValue(context.User.Identity?.Name ?? "", out var user) ? user.Destinations : [])
            .RequireAuthorization();

        app.Lifetime.ApplicationStarted.Register(() => Announce(app.Urls, users.Keys));
        return app;
    }

    /// <summary>
    /// Says, once listening, where the app is and how to sign in: the log level in appsettings.json hides
    /// ASP.NET's own "Now listening on". User names are shown; passwords never are.
    /// </summary>
    private static void Announce(ICollection<string> urls, IEnumerable<string> users)
    {
        foreach (var url in urls)
            Console.WriteLine($"ws2s sample: listening on {url}, ws2s at ws{url["http".Length..]}/ws2s");
        var first = urls.FirstOrDefault();
        if (first is null) return;
        var names = string.Join(", ", users);
        Console.WriteLine(names.Length == 0
            ? "ws2s sample: no users to sign in as: add some under Users in appsettings.json (see samples/README.md)"
            : $"ws2s sample: sign in with a form POST to {first}/login (fields user and password; users: {names}), " +
              $"then open ws{first["http".Length..]}/ws2s with the cookie it sets: see samples/README.md");
    }
}
