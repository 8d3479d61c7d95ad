using System.Net.Sockets;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Connectors;

/// <summary>Socket errors in the words and dial errors the core knows.</summary>
internal static class SocketWords
{
    /// <summary>A socket error in plain words: <c>ConnectionReset</c> → "connection reset".</summary>
    public static string Of(SocketError error)
    {
        var name = error.ToString();
        var words = new System.Text.StringBuilder(name.Length + 4);
        foreach (var c in name)
        {
            if (char.IsUpper(c) && words.Length > 0) words.Append(' ');
            words.Append(char.ToLowerInvariant(c));
        }
        return words.ToString();
    }

    /// <summary>A stream's I/O error in words: the socket error under it, or its own message.</summary>
    public static string Of(IOException e) =>
        e.InnerException is SocketException socket ? Of(socket.SocketErrorCode) : "connection failed: " + e.Message;

    public static DialError DialError(SocketError error) => error switch
    {
        SocketError.ConnectionRefused => Protocol.DialError.ConnectionRefused,
        SocketError.NetworkUnreachable => Protocol.DialError.NetworkUnreachable,
        SocketError.HostUnreachable => Protocol.DialError.HostUnreachable,
        _ => Protocol.DialError.NewDialFailed("connect failed: " + Of(error)),
    };
}
