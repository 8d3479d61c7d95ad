namespace Ws2s.AspNetCore.Configuration;

/// <summary><c>udp</c>: datagrams to peers (Wisp's UDP streams, ws2s's <c>"udp": true</c>). Off by default: a page must not become a UDP flood.</summary>
public sealed partial class Ws2sOptions
{
    public UdpOptions Udp { get; set; } = new();

    public sealed class UdpOptions
    {
        /// <summary>May sessions send datagrams at all? Off: a UDP connect is refused (code 4; Wisp CLOSE 0x41, and INFO offers no UDP).</summary>
        public bool Enabled { get; set; }

        /// <summary>
        /// Where datagrams may go, in the rules' syntax (<c>"1.1.1.1:53"</c>, <c>"*.example.com:3478"</c>); a destination must
        /// also pass the destination policy. Empty: wherever the policy allows.
        /// </summary>
        public List<string> Allow { get; set; } = [];

        /// <summary>Datagrams one client address may send per second, over all its sessions; more are dropped (UDP may drop).</summary>
        public int MaxPacketsPerSecond { get; set; } = 200;

        /// <summary>Bytes of datagrams one client address may send per second, over all its sessions; more are dropped.</summary>
        public int MaxBytesPerSecond { get; set; } = 1 << 20;
    }
}
