using System.Collections.Concurrent;
using System.Threading.Channels;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Sessions;

/// <summary>
/// The core's settings in force for the server's sessions, and the sessions running now. When the settings change (a
/// reload, this machine's addresses) every session is woken, so it takes them up at once and re-arms its timer for the
/// deadlines they moved (an idle session has no other input that would). A wake-up a full input channel drops is not
/// missed: that session has inputs queued, and takes the settings up before the next of them.
/// </summary>
internal sealed class SettingsInForce(Func<Session.Settings> current)
{
    private readonly ConcurrentDictionary<ChannelWriter<Input>, byte> _sessions = new();

    public Session.Settings Current => current();

    /// <summary>The session whose inputs go to <paramref name="session"/> is woken on every change until the returned registration is disposed.</summary>
    public IDisposable Watch(ChannelWriter<Input> session)
    {
        _sessions.TryAdd(session, 0);
        return new Watching(this, session);
    }

    /// <summary>The settings changed: wake every session.</summary>
    public void Changed()
    {
        foreach (var session in _sessions.Keys) session.TryWrite(Input.Wake);
    }

    private sealed class Watching(SettingsInForce settings, ChannelWriter<Input> session) : IDisposable
    {
        public void Dispose() => settings._sessions.TryRemove(session, out _);
    }
}
