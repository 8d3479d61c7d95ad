using System.Net;
using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using Ws2s.AspNetCore.Admission;
using Ws2s.AspNetCore.Connectors;
using Ws2s.AspNetCore.Websockify;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Configuration;

/// <summary>
/// Everything a reload changes, made once from one validated <see cref="Ws2sOptions"/> and never changed after:
/// admission (origins, tokens, signed-token keys, allowed hosts), the core's settings, websockify's targets, TLS
/// trust, the secrets logs are cleaned of, and the reloadable limits. <see cref="LiveConfiguration"/> swaps it
/// whole, so a reader that took one snapshot sees one configuration, never a mix.
/// </summary>
/// <remarks>
/// What is fixed at start (the connection gate's limits, the queue budget, trusted proxies, SSH logins) is read
/// from <see cref="LiveConfiguration.Start"/>, never from a snapshot.
/// </remarks>
internal sealed class Ws2sSnapshot
{
    /// <summary>Builds the snapshot; reading its files may throw (<see cref="IOException"/>, a key that does not load).</summary>
    public Ws2sSnapshot(Ws2sOptions options, TimeProvider time)
    {
        Origins = new OriginPolicy(options.Origins);
        Secrets = [.. TokenCheck.Configured(options)];
        Tokens = new TokenCheck(Secrets);
        Jwt = options.Auth.Jwt is { } jwt ? new JwtCheck(jwt, time) : null;
        Hosts = new AllowedHosts(options.AllowedHosts);
        WebsockifyTargets = new WebsockifyTargets(options.RawTargets, options.RawTokenFile);
        TlsTrust = new TlsTrust(options.Tls.TrustedCertificates);
        Limits = options.Limits;
        Udp = options.Udp;
        Resume = options.Resume;
        Wisp = new WispStreams.WispSettings(options.Wisp.BufferPackets, options.Wisp.MaxStreams, options.Wisp.MaxStreamOpensPerSecond,
            options.Wisp.Motd is { Length: > 0 } motd ? FSharpOption<string>.Some(motd) : FSharpOption<string>.None, false, false);
        _template = SessionSettings(options);
    }

    public OriginPolicy Origins { get; }

    /// <summary>The configured access tokens (<c>tokens</c> and <c>tokensFile</c>): checked, and cleaned from every log line.</summary>
    public IReadOnlyList<string> Secrets { get; }

    public TokenCheck Tokens { get; }

    /// <summary>Signed tokens (<c>auth.jwt</c>), when configured.</summary>
    public JwtCheck? Jwt { get; }

    public AllowedHosts Hosts { get; }

    public WebsockifyTargets WebsockifyTargets { get; }

    /// <summary>What TLS connections to destinations trust.</summary>
    public TlsTrust TlsTrust { get; }

    /// <summary>The limits of sessions opening from now on (but those fixed at start: see the remarks).</summary>
    public Ws2sOptions.LimitOptions Limits { get; }

    /// <summary>UDP's switch and per-client rates for datagrams sent from now on.</summary>
    public Ws2sOptions.UdpOptions Udp { get; }

    /// <summary>How sessions opening from now on resume (their grace and buffer are also in the core's settings), and the attempts allowed.</summary>
    public Ws2sOptions.ResumeOptions Resume { get; }

    /// <summary>What a Wisp connection opening from now on may hold (its version is the upgrade's to say).</summary>
    public WispStreams.WispSettings Wisp { get; }

    public bool TokenRequired => Tokens.Required || Jwt is not null;

    /// <summary>The core's settings without this machine (its endpoints and addresses).</summary>
    private readonly Session.Settings _template;

    /// <summary>The settings with this machine filled in, and after how many address changes they were made.</summary>
    private volatile Completed? _complete;

    private sealed record Completed(int AddressChanges, Session.Settings Settings);

    /// <summary>
    /// The core's settings with this machine's endpoints and addresses, completed at first use and again after an
    /// address change. The cache belongs to this snapshot alone: settings computed from an older configuration can
    /// only ever land in that configuration's snapshot, never in the current one's.
    /// </summary>
    public Session.Settings Settings(int addressChanges, Func<(IEnumerable<IPEndPoint>, IEnumerable<IPAddress>)> machine)
    {
        if (_complete is { } done && done.AddressChanges == addressChanges) return done.Settings;
        var (own, local) = machine();
        var settings = Session.onMachine(own, local, _template);
        _complete = new(addressChanges, settings);
        return settings;
    }

    /// <summary>The settings the protocol core runs each session with, before this machine is known.</summary>
    private static Session.Settings SessionSettings(Ws2sOptions options)
    {
        static FSharpList<Policy.Rule> Rules(IEnumerable<string> texts) =>
            ListModule.OfSeq(texts.Select(t => Policy.parseRule(t).ResultValue));
        var pins = ListModule.OfSeq(options.Tls.Pinned.Select(p =>
            Tuple.Create(Policy.parseRule(p.Rule).ResultValue, ListModule.OfSeq(p.Sha256.Select(TlsTrust.NormalizePin)))));
        var policy = new Policy.DestinationPolicy(
            options.AllowConnectToServerLocal, Rules(options.Destinations.Allow), Rules(options.Destinations.Deny), FSharpList<IPEndPoint>.Empty,
            FSharpList<IPAddress>.Empty, FSharpList<FSharpList<Policy.Rule>>.Empty, Rules(options.Tls.Required), pins);
        var limits = options.Limits;
        return new Session.Settings(
            policy,
            limits.ConnectTimeoutSeconds,
            limits.MaxPendingRequests,
            limits.MaxPendingBytes,
            limits.IdleTimeoutSeconds,
            limits.MessageTimeoutSeconds,
            limits.MaxConnectsPerSecond,
            Rules(options.Ssh.AllowTargets),
            true,
            Session.defaultSettings.AttemptDelayMilliseconds,
            options.Udp.Enabled ? FSharpOption<FSharpList<Policy.Rule>>.Some(Rules(options.Udp.Allow)) : FSharpOption<FSharpList<Policy.Rule>>.None,
            false,
            new Resumption.ResumeSettings(options.Resume.GraceSeconds, options.Resume.MaxBufferedBytes));
    }
}
