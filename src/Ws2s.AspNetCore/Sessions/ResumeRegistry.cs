using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace Ws2s.AspNetCore.Sessions;

/// <summary>
/// Who admitted a session, as a resume must match it: the access token (its SHA-256, never the token) or a signed token's
/// subject, and the Origin. Not the address: that is what changes when a phone moves between networks.
/// </summary>
internal sealed record ResumeIdentity(string Admission, string? Origin)
{
    /// <summary>Nobody's: a session that cannot be resumed (websockify, Wisp) or a test's.</summary>
    public static readonly ResumeIdentity None = new("", null);

    /// <summary>The identity of a session admitted with <paramref name="presented"/> (null: no token), its signed token's <paramref name="subject"/>, from <paramref name="origin"/>.</summary>
    public static ResumeIdentity Of(string? presented, string? subject, string? origin) =>
        new(subject is not null ? "sub:" + subject
            : presented is not null ? "token:" + Convert.ToHexString(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(presented)))
            : "", origin);

    /// <summary>Never the token's hash: log lines name a session by its client.</summary>
    public override string ToString() => "(identity)";
}

/// <summary>
/// This server's resumable sessions by their resume tokens (one good token per session at a time), and the claims on them:
/// a claim takes the token away (so two resumes with one token cannot both proceed) after checking that this instance
/// holds it, that the claimant is the session's identity, and that its address is within its failed attempts a minute
/// (only failures count: a phone that resumes often, or many tabs behind one NAT, are not guessing).
/// A session that refuses the resume puts its token back (it stays good). Tokens are 128 random bits after the instance's
/// name (<c>resume.instance</c>): a balancer routes a resume by the <c>?instance=</c> its client adds to the URL.
/// </summary>
internal sealed partial class ResumeRegistry(string instance, TimeProvider time, Func<int> attemptsPerMinute)
{
    /// <summary>What a claim of a token nobody here holds hears; also a claim by another identity (a token is not confirmed to a stranger).</summary>
    public const string NoSession = "no session holds this token";

    private readonly ConcurrentDictionary<string, SessionRunner> _sessions = new(StringComparer.Ordinal);

    private sealed class Attempts
    {
        public long WindowStart;
        public int Count;
    }

    /// <summary>Failed attempts per address, forgotten a minute after their window began.</summary>
    private readonly Admission.PerClientAddress<Attempts> _attempts = new(time, attempts => Volatile.Read(ref attempts.WindowStart));

    public string Instance => instance;

    /// <summary>Sessions that hold a token now (suspended, or with their client).</summary>
    public int Count => _sessions.Count;

    /// <summary>A new token for <paramref name="session"/>; its <paramref name="previous"/> one, if any, is good no more.</summary>
    public string Issue(SessionRunner session, string? previous)
    {
        if (previous is not null) _sessions.TryRemove(new(previous, session));
        while (true)
        {
            var token = instance + "." + Convert.ToBase64String(RandomNumberGenerator.GetBytes(16)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
            if (_sessions.TryAdd(token, session)) return token;
        }
    }

    /// <summary><paramref name="token"/> is good no more (its session ended, or its connection is no longer resumable).</summary>
    public void Revoke(string token, SessionRunner session) => _sessions.TryRemove(new(token, session));

    /// <summary>
    /// Takes the session that holds <paramref name="token"/> for <paramref name="claimant"/> (its client at <paramref name="from"/>), or says why not.
    /// </summary>
    public (SessionRunner? Session, string? Refusal) Claim(string token, ResumeIdentity claimant, IPAddress from)
    {
        if (!AttemptsLeft(from)) return (null, "too many resume attempts; wait a minute");
        var dot = token.IndexOf('.');
        if (dot > 0 && !string.Equals(token[..dot], instance, StringComparison.Ordinal))
        {
            Failed(from);
            var named = InstanceName().IsMatch(token[..dot]) ? token[..dot] : "another instance";
            return (null, $"this token is for instance {named}; the balancer must route by ?instance=");
        }
        if (!_sessions.TryGetValue(token, out var session) || session.Identity != claimant || !_sessions.TryRemove(new(token, session)))
        {
            Failed(from);
            return (null, NoSession);
        }
        return (session, null);
    }

    /// <summary>A claimed session refused the resume (the client's count is outside what it keeps): one failed attempt of <paramref name="from"/>.</summary>
    public void Failed(IPAddress from) => Tally(from, add: true);

    /// <summary>A claimed session refused the resume: its token is good again.</summary>
    public void Restore(string token, SessionRunner session) => _sessions.TryAdd(token, session);

    /// <summary>The instance names <c>resume.instance</c> accepts (they appear in tokens and URLs).</summary>
    [GeneratedRegex("^[A-Za-z0-9-]{1,32}$")]
    public static partial Regex InstanceName();

    /// <summary>A name for an instance not configured by name: random, so two instances never share one.</summary>
    public static string RandomInstance() => "i" + Convert.ToHexString(RandomNumberGenerator.GetBytes(4)).ToLowerInvariant();

    private bool AttemptsLeft(IPAddress from) => Tally(from, add: false);

    /// <summary>Whether <paramref name="from"/> has failed attempts left this minute (before counting one more, if <paramref name="add"/>).</summary>
    private bool Tally(IPAddress from, bool add)
    {
        var now = time.GetTimestamp();
        var attempts = _attempts.Get(from, now, () => new Attempts { WindowStart = now });
        lock (attempts)
        {
            if (time.GetElapsedTime(attempts.WindowStart, now) >= TimeSpan.FromMinutes(1))
            {
                attempts.WindowStart = now;
                attempts.Count = 0;
            }
            if (attempts.Count >= attemptsPerMinute()) return false;
            if (add) attempts.Count++;
            return true;
        }
    }
}
