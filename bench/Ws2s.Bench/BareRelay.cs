using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Ws2s.Bench;

/// <summary>
/// The floor under ws2s: a WebSocket-to-TCP relay as an ASP.NET Core app would write it in a few lines (Kestrel's
/// defaults, the WebSockets middleware, one TCP connection per WebSocket, binary frames both ways), nothing of ws2s.
/// Run by the bench as a process of its own (<c>--bare-relay PORT ECHO</c>) so that its CPU can be read from /proc
/// and compared with ws2sd's per session and per MB.
/// </summary>
internal static class BareRelay
{
    public static async Task RunAsync(int port, IPEndPoint echo)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port));
        var app = builder.Build();
        app.UseWebSockets();
        app.Run(async context =>
        {
            if (!context.WebSockets.IsWebSocketRequest)
            {
                context.Response.StatusCode = StatusCodes.Status400BadRequest;
                return;
            }
            var offered = context.WebSockets.WebSocketRequestedProtocols;
            using var client = await context.WebSockets.AcceptWebSocketAsync(offered.Contains("binary") ? "binary" : null);
            using var peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await peer.ConnectAsync(echo);
            var toPeer = Task.Run(async () =>
            {
                var buffer = new byte[64 * 1024];
                while (true)
                {
                    var received = await client.ReceiveAsync(buffer, CancellationToken.None);
                    if (received.MessageType == WebSocketMessageType.Close) break;
                    await peer.SendAsync(buffer.AsMemory(0, received.Count), SocketFlags.None);
                }
                peer.Shutdown(SocketShutdown.Send);
            });
            var fromPeer = new byte[64 * 1024];
            int read;
            while ((read = await peer.ReceiveAsync(fromPeer, SocketFlags.None)) > 0)
                await client.SendAsync(fromPeer.AsMemory(0, read), WebSocketMessageType.Binary, true, CancellationToken.None);
            await toPeer;
            if (client.State == WebSocketState.CloseReceived) await client.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        });
        await app.RunAsync();
    }
}
