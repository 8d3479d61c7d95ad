using System.Net.Sockets;
using System.Reflection;

namespace Ws2s.AspNetCore.Connectors;

/// <summary>
/// Lets a socket's completions run on the thread that saw the socket become ready (the runtime's event
/// thread), not on a thread-pool thread it would wake for each of them: for a relay of small messages that
/// hop is most of the round trip. The runtime offers this process-wide
/// (<c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1</c>), but SSH.NET blocks inside its socket callbacks
/// (its local forward binds a channel in the accept's completion) and would stall the event thread, so
/// ws2s asks for it per socket, on the sockets it relays over only: a client's socket once it is a WebSocket,
/// and a peer's socket once it relays (not during a TLS handshake, whose certificate checks may block).
/// The runtime keeps the switch internal (<c>Socket.PreferInlineCompletions</c>); where it has none, nothing
/// changes, and a test fails so that a runtime without it is noticed.
/// Code that runs on such a socket's completions must never block: connectors are started off it.
/// </summary>
internal static class InlineCompletions
{
    private const BindingFlags Internal = BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public;

    /// <summary>The socket's setter (it has no getter); the handle under it holds the value.</summary>
    private static readonly PropertyInfo? Switch = Find(typeof(Socket)), Value = Find(typeof(SafeSocketHandle));

    private static PropertyInfo? Find(Type type) =>
        !OperatingSystem.IsWindows() && type.GetProperty("PreferInlineCompletions", Internal) is { PropertyType: var t } p && t == typeof(bool) ? p : null;

    /// <summary>Whether this runtime lets ws2s choose per socket.</summary>
    public static bool Supported => !_failed && Switch is { CanWrite: true } && Value is { CanRead: true };

    /// <summary>The switch threw once (a runtime that changed it): ws2s relays through the thread pool from then on.</summary>
    private static volatile bool _failed;

    /// <summary>Turns inline completions on or off for <paramref name="socket"/> (nothing where unsupported or disposed).</summary>
    public static void Prefer(Socket? socket, bool inline)
    {
        if (socket is null || !Supported) return;
        try
        {
            Switch!.SetValue(socket, inline);
        }
        catch (Exception e) when (e is TargetInvocationException or ArgumentException or MemberAccessException)
        {
            _failed = true;
        }
    }

    /// <summary>Whether <paramref name="socket"/>'s completions run inline (for tests).</summary>
    public static bool IsInline(Socket socket) => Supported && Value!.GetValue(socket.SafeHandle) is true;
}
