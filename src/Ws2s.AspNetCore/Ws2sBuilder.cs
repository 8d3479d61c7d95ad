using Microsoft.Extensions.DependencyInjection.Extensions;
using Ws2s.AspNetCore.Connectors;

namespace Ws2s.AspNetCore;

/// <summary>What <c>AddWs2s</c> returns: the place to add ws2s's pluggable parts (<see cref="Ws2sBuilderExtensions"/>).</summary>
public interface IWs2sBuilder
{
    /// <summary>The application's services, ws2s's among them.</summary>
    IServiceCollection Services { get; }
}

internal sealed class Ws2sBuilder(IServiceCollection services) : IWs2sBuilder
{
    public IServiceCollection Services => services;
}

/// <summary>ws2s's pluggable parts: connectors (how a kind of peer is reached) and destination scopes (what a session may reach).</summary>
public static class Ws2sBuilderExtensions
{
    /// <summary>
    /// Adds a connector: hops whose scheme is <see cref="IConnector.Scheme"/> are reached through it (a named peer
    /// <c>mem:NAME</c>, listed exactly in <c>destinations.allow</c>; or <c>tcp</c>, <c>unix</c>, <c>ssh</c> to replace ws2s's
    /// own). The destination policy has judged every hop before a connector sees it.
    /// </summary>
    public static IWs2sBuilder AddConnector<TConnector>(this IWs2sBuilder builder) where TConnector : class, IConnector
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IConnector, TConnector>());
        return builder;
    }

    /// <summary>
    /// Narrows every session this app opens, on every ws2s endpoint, to the destination rules <paramref name="scope"/>
    /// returns for its request (in the syntax of <c>destinations.allow</c>; null: no narrowing; empty: nothing). Like
    /// <see cref="Ws2sEndpointOptions.Destinations"/> but for all endpoints: a scope never widens the server's policy, and
    /// several scopes all apply. A scope with a bad rule refuses the session (HTTP 500, logged).
    /// </summary>
    public static IWs2sBuilder AddDestinationScope(this IWs2sBuilder builder, Func<HttpContext, IEnumerable<string>?> scope)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(scope);
        builder.Services.AddSingleton(new DestinationScope(scope));
        return builder;
    }
}

/// <summary>A destination scope added with <see cref="Ws2sBuilderExtensions.AddDestinationScope"/>.</summary>
internal sealed record DestinationScope(Func<HttpContext, IEnumerable<string>?> Rules);
