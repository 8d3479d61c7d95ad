using Ws2s.Host.Ssh;

namespace Ws2s.Host.Sessions;

/// <summary>What a session needs to open SSH tunnels: the host keys it trusts and how long a login may take.</summary>
internal sealed record TunnelSettings(KnownHosts KnownHosts, TimeSpan Timeout);
