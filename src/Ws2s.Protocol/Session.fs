/// (Longer than 250 lines on purpose: the whole state machine in one file, one `step` read top to bottom.)
///
/// The ws2s session as a pure state machine: `step session input` gives the next session and the
/// effects the host must carry out, in order. No IO, no clock, no threads: time arrives as
/// `ConnectTimerFired`, sockets as events tagged with the generation of their connection.
///
/// Every transition is in `step` (socket and timer events) and `execute` (client requests);
/// spec/protocol.md draws the same table.
module Ws2s.Protocol.Session

open System
open System.Net
open Ws2s.Protocol.Policy

type Settings =
    { Policy: DestinationPolicy
      /// Resolve plus dial must finish within this many seconds, else code 2.
      ConnectTimeoutSeconds: int
      /// Requests that may wait behind a pending connect or write; one more closes the session (1008).
      MaxPending: int
      /// Bytes (payloads) that may wait likewise.
      MaxPendingBytes: int
      /// Seconds without a frame either way before the session is closed (1000); 0: never.
      IdleTimeoutSeconds: int
      /// Connects a session may start per second (Tick); more get code 2. 0: no limit.
      MaxConnectsPerSecond: int
      /// Where SSH tunnels may lead (judged on the final host:port); empty: anywhere.
      SshAllowTargets: Rule list
      /// May this session open SSH tunnels at all? (A signed token's `ssh: false` says no.)
      SshAllowed: bool
      /// RFC 8305's connection attempt delay: while an attempt is pending, the next address is tried after this many milliseconds.
      AttemptDelayMilliseconds: int }

let defaultSettings =
    { Policy = serverLocalOnly false
      ConnectTimeoutSeconds = 10
      MaxPending = 64
      MaxPendingBytes = 4 <<< 20
      IdleTimeoutSeconds = 3600
      MaxConnectsPerSecond = 10
      SshAllowTargets = []
      SshAllowed = true
      AttemptDelayMilliseconds = 250 }

/// The TCP connection a session owns, or is opening; `Pins`: the certificate pins its destination
/// has in the policy (by name, TLS server name and resolved address), for when it goes TLS (the
/// certificate's own names add theirs when it arrives).
type Link = { Generation: Generation; Target: Target; Pins: string list }

/// Why a TLS handshake runs: the connect asked for `tls`, or `starttls` upgrades an open connection.
type Handshake =
    | AtConnect
    | InPlace

/// What a busy session is waiting for. Requests that arrive meanwhile wait in order.
type Awaiting =
    | Resolution of Link
    /// Dialling: `Attempts` dials in flight (happy eyeballs starts another every 250 ms while one is
    /// pending, RFC 8305); `Rest` are the allowed endpoints still to try.
    | Dialling of Link * attempts: int * rest: IPEndPoint list
    /// A write is in flight; `Answer` is sent when it completes. `PeerFinished`: the peer already
    /// closed its side (code 5 was sent), so the connection ends when the write does.
    | Writing of Link * answer: Response option * peerFinished: bool
    /// The TLS handshake on the link's connection (its `Target.Tls` says with which server name).
    | Securing of Link * Handshake

type Phase =
    /// No connection: sends get code 3.
    | Idle
    /// Connected and ready.
    | Open of Link
    /// `shutdown` sent FIN: the peer may still send, nothing more is written.
    | HalfClosed of Link
    /// Waiting for an outcome; the list holds the requests that arrived since, oldest first.
    | Busy of Awaiting * pending: Request list
    /// The client is gone; nothing happens any more.
    | Ended

type Session =
    { Settings: Settings
      /// The generation the next connection gets.
      NextGeneration: Generation
      Phase: Phase
      /// Ticks since the last frame either way.
      QuietSeconds: int
      /// Connects started since the last tick.
      ConnectsThisSecond: int
      /// Why this session may start no more connects (its signed token expired), if so; the open connection goes on.
      ConnectsEnded: string option }

/// The settings narrowed to the destinations `rules` allow (a per-session scope; never wider).
let narrowTo (rules: Rule list) (settings: Settings) = { settings with Policy = narrow rules settings.Policy }

/// The settings with SSH tunnels refused for this session (code 4).
let withoutSsh (settings: Settings) = { settings with SshAllowed = false }

/// The settings on this machine: the endpoints this server listens on and this machine's addresses
/// (both refused as this machine, see `Policy.judge`), in place of whatever they held.
let onMachine (ownEndpoints: IPEndPoint seq) (localAddresses: IPAddress seq) (settings: Settings) =
    { settings with
        Policy =
            { settings.Policy with
                OwnEndpoints = List.ofSeq ownEndpoints
                LocalAddresses = List.ofSeq localAddresses } }

/// The server's configuration changed (a reload, or this machine's addresses): the session takes the
/// new settings for what it does from now on — new connects are judged by the new policy, queued
/// requests run under it — keeping what narrows this session alone (its scopes, SSH refused). The
/// open connection is not touched. No effects: nothing is said to the client.
let reconfigure (server: Settings) (session: Session) =
    match session.Phase with
    | Ended -> session
    | _ ->
        let own = session.Settings
        let policy = { server.Policy with Scopes = own.Policy.Scopes }
        { session with Settings = { server with Policy = policy; SshAllowed = own.SshAllowed && server.SshAllowed } }

let start settings =
    { Settings = settings; NextGeneration = 1L; Phase = Idle; QuietSeconds = 0; ConnectsThisSecond = 0; ConnectsEnded = None }

/// The session's token expired at `expiredAt` (UTC): it may start no more connects, each later one refused
/// with code 4 in words that say when and what to do; the open connection, if any, is not touched. No
/// effects: nothing is said until a connect.
let endConnects (expiredAt: DateTimeOffset) (session: Session) =
    match session.Phase with
    | Ended -> session
    | _ ->
        let at = expiredAt.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", Globalization.CultureInfo.InvariantCulture)
        { session with ConnectsEnded = Some $"the session's token expired at {at}; open a new session with a new token" }

/// The connection whose events are live in this phase, if any.
let liveLink phase =
    match phase with
    | Open link
    | HalfClosed link
    | Busy(Resolution link, _)
    | Busy(Dialling(link, _, _), _)
    | Busy(Writing(link, _, _), _)
    | Busy(Securing(link, _), _) -> Some link
    | Idle
    | Ended -> None

/// The bytes a queued request holds.
let private weight request =
    match request with
    | Valid(Send b | SendBytes b | Forward b) -> b.Length
    | Valid(Connect t) -> t.Destination.Text.Length
    | Valid(Close | Shutdown | Ping | StartTls _) | Rejected _ -> 0

let private queueIsFull settings (pending: Request list) =
    List.length pending >= settings.MaxPending || List.sumBy weight pending >= settings.MaxPendingBytes

/// The payload bytes of the requests waiting behind the pending operation: what this session holds
/// for its client beyond the operation in flight (the host adds it to the server-wide budget).
let queuedBytes session =
    match session.Phase with
    | Busy(_, pending) -> List.sumBy weight pending
    | Idle
    | Open _
    | HalfClosed _
    | Ended -> 0

/// May the host feed another client frame now? (False when the queue is full, or after the end.)
let acceptsRequest session =
    match session.Phase with
    | Busy(_, pending) -> not (queueIsFull session.Settings pending)
    | Ended -> false
    | Idle
    | Open _
    | HalfClosed _ -> true

/// Special-use names (RFC 6761) answered without asking DNS: `localhost` and `*.localhost` are the
/// loopback addresses, `*.invalid` never exists. IP literals need no resolution. Other names: None (resolve them).
let knownAddresses (host: Host) : IPAddress list option =
    match host.Kind with
    | Literal address -> Some [ address ]
    | DnsName name when name = "localhost" || name.EndsWith ".localhost" -> Some [ IPAddress.Loopback; IPAddress.IPv6Loopback ]
    | DnsName name when name = "invalid" || name.EndsWith ".invalid" -> Some []
    | DnsName _ -> None

/// Endpoints to try, IPv6 and IPv4 alternating, starting with the family of the first answer (RFC 8305).
let dialOrder (addresses: IPAddress list) (port: Port) =
    let endpoint (a: IPAddress) = IPEndPoint(canonical a, port.Value)
    match addresses with
    | [] -> []
    | first :: _ ->
        let primary, secondary =
            addresses |> List.distinct |> List.partition (fun a -> a.AddressFamily = first.AddressFamily)
        let rec alternate xs ys =
            match xs, ys with
            | x :: xs', y :: ys' -> x :: y :: alternate xs' ys'
            | rest, [] | [], rest -> rest
        alternate primary secondary |> List.map endpoint

/// The host and port of a destination that has them (TCP, UDP).
let private hostAndPort (destination: Destination) =
    match destination with
    | TcpPeer(host, port)
    | UdpPeer(host, port) -> Some(host, port)
    | UnixPeer _
    | NamedPeer _ -> None

/// The first hop of a connection when it is a host to resolve and judge by address: the SSH server for a
/// tunnel, else the destination's host and port. None: a destination listed by name (a Unix path…).
let private resolvedHop (target: Target) =
    match target.Ssh with
    | Some ssh -> Some(ssh.Host, ssh.Port)
    | None -> hostAndPort target.Destination

/// Dial the hop at a checked address: directly, or log into the SSH server and open a channel to the target.
let private dialEffect (link: Link) endpoint =
    let hop =
        match link.Target.Ssh, link.Target.Destination with
        | Some login, TcpPeer(host, port) -> SshHop(endpoint, login, host, port)
        | _, UdpPeer _ -> UdpHop endpoint
        | _ -> TcpHop endpoint
    Dial(link.Generation, hop)

/// Start dialling `endpoint`; while more endpoints wait, also the timer after which the next attempt
/// starts alongside (direct connections only: a tunnel's attempts are logins, tried one at a time).
let private startAttempt settings (link: Link) endpoint (rest: IPEndPoint list) =
    match rest, link.Target.Ssh with
    | _ :: _, None -> [ dialEffect link endpoint; StartAttemptTimer(link.Generation, settings.AttemptDelayMilliseconds) ]
    | _ -> [ dialEffect link endpoint ]

/// Why a connect failed, as the code the client expects: 6 through an SSH server, else 2.
let private connectFailure (link: Link) reason =
    match link.Target.Ssh with
    | Some _ -> SshFailed reason
    | None -> ConnectFailed reason

let private closeLinkOf phase =
    match liveLink phase with
    | Some link -> [ CloseConnection link.Generation ]
    | None -> []

/// The answer to a connect, and how it ended for the host's metrics (`started`: its generation, if it had one).
let private answerConnect (started: Generation option) (response: Response) =
    [ Reply response; Observe(ConnectAnswered(started, response.Code)) ]

/// A connect that got as far as `link` ends: its connection closed, the answer given.
let private endConnect (link: Link) (response: Response) =
    CloseConnection link.Generation :: answerConnect (Some link.Generation) response

/// Where `tls.required` and pins look: the final destination's name (and TLS server name), and the
/// addresses dialled when they are the destination's own; through an SSH server, which resolves the
/// target, only the addresses that need no resolver (an IP literal, `localhost`).
let private destination (target: Target) (host: Host) (addresses: IPAddress list) =
    let names = host :: (target.Tls |> Option.map (fun t -> t.ServerName) |> Option.toList)
    names, (if target.Ssh.IsSome then knownAddresses host |> Option.defaultValue [] else addresses)

let private tlsNeeded rule = $"tls.required {rule}: connect with \"tls\": true"

/// Judge the resolved addresses, then dial the first allowed endpoint or answer why not.
let private dialOrRefuse session (link: Link) (addresses: IPAddress list) pending =
    match resolvedHop link.Target, hostAndPort link.Target.Destination with
    | Some(host, port), Some(target, targetPort) ->
        let policy = session.Settings.Policy
        let names, ownAddresses = destination link.Target target addresses
        let tlsMissing =
            if link.Target.Tls.IsSome then None
            else tlsRequirement policy target ownAddresses targetPort.Value
        match judgeAll policy host addresses port.Value, tlsMissing with
        | Refused rule, _ ->
            Idle, endConnect link (Forbidden(host.Written, rule)), pending
        | Allowed, Some rule ->
            Idle, endConnect link (Forbidden(target.Written, tlsNeeded rule)), pending
        | Allowed, None ->
            let link = { link with Pins = pinsFor policy names ownAddresses targetPort.Value }
            match dialOrder addresses port with
            | [] -> Idle, endConnect link (connectFailure link $"host not found: {host}"), pending
            | first :: rest -> Busy(Dialling(link, 1, rest), pending), startAttempt session.Settings link first rest, []
    | _ -> Idle, endConnect link (BadRequest "an SSH tunnel leads to a host and port only"), pending // refused in `execute` before

/// Judge a destination listed by name (a Unix path, a named peer), then dial it or answer why not.
let private dialListed session (link: Link) =
    let policy = session.Settings.Policy
    let peer = link.Target.Destination
    let tlsMissing = if link.Target.Tls.IsSome then None else peerTlsRequirement policy peer
    let hop =
        match peer with
        | UnixPeer path -> Some(UnixHop path)
        | NamedPeer(scheme, name) -> Some(NamedHop(scheme, name))
        | TcpPeer _ | UdpPeer _ -> None
    match judgePeer policy peer, tlsMissing, hop with
    | Refused rule, _, _ -> Idle, endConnect link (Forbidden(peer.Text, rule))
    | Allowed, Some rule, _ -> Idle, endConnect link (Forbidden(peer.Text, tlsNeeded rule))
    | Allowed, None, None -> Idle, endConnect link (ConnectFailed "not a destination listed by name") // unreachable: hosts resolve
    | Allowed, None, Some hop ->
        let serverNames = link.Target.Tls |> Option.map (fun t -> t.ServerName) |> Option.toList
        let link = { link with Pins = peerPins policy peer serverNames }
        Busy(Dialling(link, 1, []), []), [ Dial(link.Generation, hop) ]

/// Why a tunnel's final destination is refused (`ssh.allowTargets`, the session's scopes, plaintext to
/// a `tls.required` destination), if it is.
let private tunnelRefusal settings (target: Target) =
    match hostAndPort target.Destination with
    | None -> Some "an SSH tunnel leads to a host and port only"
    | Some(host, port) ->
    match judgeTunnelTarget settings.SshAllowTargets settings.Policy.Scopes host port.Value with
    | Refused why -> Some why
    | Allowed when target.Tls.IsSome -> None
    | Allowed -> tunnelTlsRequirement settings.Policy host (knownAddresses host) port.Value |> Option.map tlsNeeded

/// Carry out one request in a phase that is not busy.
let private execute session request : Session * Effect list =
    let reply response = session, [ Reply response ]
    match request, session.Phase with
    | _, (Busy _ | Ended) -> session, [] // unreachable: `request` queues or drops these
    | Rejected response, _ -> reply response
    | Valid(Connect target), _ when session.ConnectsEnded.IsSome ->
        session, answerConnect None (Forbidden(target.Destination.Quoted, session.ConnectsEnded.Value))
    | Valid(Connect _), _ when
        session.Settings.MaxConnectsPerSecond > 0 && session.ConnectsThisSecond >= session.Settings.MaxConnectsPerSecond ->
        session, answerConnect None (ConnectFailed $"too many connects: at most {session.Settings.MaxConnectsPerSecond} per second")
    | Valid(Connect({ Ssh = Some _ } as target)), _ when not session.Settings.SshAllowed ->
        session, answerConnect None (Forbidden(target.Destination.Quoted, "SSH tunnels are not in this session's scope"))
    | Valid(Connect({ Ssh = Some _ } as target)), _ when (tunnelRefusal session.Settings target).IsSome ->
        session, answerConnect None (Forbidden(target.Destination.Quoted, (tunnelRefusal session.Settings target).Value))
    | Valid(Connect target), phase ->
        let closeOld = closeLinkOf phase
        let generation = session.NextGeneration
        let link = { Generation = generation; Target = target; Pins = [] }
        let session =
            { session with
                NextGeneration = generation + 1L
                Phase = Idle
                ConnectsThisSecond = session.ConnectsThisSecond + 1 }
        let timer = StartConnectTimer(generation, session.Settings.ConnectTimeoutSeconds)
        match resolvedHop target |> Option.map (fun (host, _) -> host, knownAddresses host) with
        | Some(host, None) ->
            { session with Phase = Busy(Resolution link, []) }, closeOld @ [ timer; Resolve(generation, host.Canonical) ]
        | Some(_, Some addresses) ->
            let phase, effects, _ = dialOrRefuse session link addresses []
            { session with Phase = phase }, closeOld @ (timer :: effects)
        | None ->
            let phase, effects = dialListed session link
            { session with Phase = phase }, closeOld @ (timer :: effects)
    | Valid(Send bytes | SendBytes bytes as command), Open link ->
        { session with Phase = Busy(Writing(link, Some(Done command.Name), false), []) }, [ Write(link.Generation, bytes) ]
    | Valid(Forward bytes), Open link ->
        { session with Phase = Busy(Writing(link, None, false), []) }, [ Write(link.Generation, bytes) ]
    | Valid(Send _ | SendBytes _ | Forward _), _ -> reply IllegalSocketState
    | Valid Close, phase -> { session with Phase = Idle }, closeLinkOf phase @ [ Reply(Done "close") ]
    | Valid Shutdown, Open link ->
        { session with Phase = HalfClosed link }, [ ShutdownConnection link.Generation; Reply(Done "shutdown") ]
    | Valid Shutdown, HalfClosed _ -> reply (Done "shutdown")
    | Valid Shutdown, _ -> reply IllegalSocketState
    | Valid Ping, _ -> reply (Done "ping")
    | Valid(StartTls _), Open { Target = { Tls = Some _ } } -> reply (BadRequest "the connection is TLS already")
    | Valid(StartTls serverName), Open link ->
        match serverName |> Option.orElse link.Target.Destination.Host with
        | None -> reply (BadRequest "starttls on a connection to a unix: socket needs tlsServerName (the name its certificate is checked against)")
        | Some name ->
            let port = hostAndPort link.Target.Destination |> Option.map (fun (_, p) -> p.Value) |> Option.defaultValue 0
            let pins = link.Pins @ pinsFor session.Settings.Policy [ name ] [] port |> List.distinct
            let link = { link with Target = { link.Target with Tls = Some { ServerName = name } }; Pins = pins }
            { session with Phase = Busy(Securing(link, InPlace), []) }, [ SecureConnection(link.Generation, name.Canonical) ]
    | Valid(StartTls _), _ -> reply IllegalSocketState

/// Run queued requests in order until one makes the session busy again; the rest stay queued.
let rec private drain session (pending: Request list) effects =
    match pending, session.Phase with
    | [], _ -> session, effects
    | _, Busy(awaiting, queued) -> { session with Phase = Busy(awaiting, queued @ pending) }, effects
    | _, Ended -> session, effects
    | request :: rest, _ ->
        let session, more = execute session request
        drain session rest (effects @ more)

/// The busy phase is over: set the new phase, then run what waited behind it.
let private settle session phase effects pending =
    drain { session with Phase = phase } pending effects

/// A client request: run it now, or queue it behind the pending operation.
let request session (request: Request) =
    match session.Phase with
    | Ended -> session, []
    | Busy(_, pending) when queueIsFull session.Settings pending ->
        { session with Phase = Ended },
        closeLinkOf session.Phase @ [ CloseClient(1008, "too many requests queued behind a pending operation") ]
    | Busy(awaiting, pending) -> { session with Phase = Busy(awaiting, pending @ [ request ]) }, []
    | Idle
    | Open _
    | HalfClosed _ -> execute session request

let private deliver (link: Link) (bytes: ReadOnlyMemory<byte>) =
    if bytes.IsEmpty then []
    elif link.Target.Binary then [ ReplyBinary bytes ]
    else [ Reply(RecvData bytes) ]

let private sameGeneration (link: Link) generation = link.Generation = generation

/// A TLS handshake failed (code 8): a connect ends as a failed connect; an upgraded connection is closed.
let private tlsFailure (link: Link) handshake reason =
    match handshake with
    | AtConnect -> endConnect link (TlsFailed reason)
    | InPlace -> [ CloseConnection link.Generation; Reply(TlsFailed reason) ]

/// The connect ran out of time (resolving, dialling, or in its TLS handshake): code 2 (6 through an SSH server).
let private connectTimedOut settings (link: Link) =
    endConnect link (connectFailure link $"connect timed out after {settings.ConnectTimeoutSeconds} s")

/// A TLS handshake ran out of time: code 2, as every timeout (6 through an SSH server, as its other
/// timeouts). A `tls` connect's handshake runs under the connect timer, and whichever limit ends it the
/// words are the connect's; a `starttls` closes the connection.
let private tlsTimeout settings (link: Link) handshake seconds =
    match handshake with
    | AtConnect -> connectTimedOut settings link
    | InPlace -> [ CloseConnection link.Generation; Reply(ConnectFailed $"tls handshake did not finish within {seconds} s") ]

/// Why the certificate fails the pins that apply to it, if it does: those of the destination (`link.Pins`)
/// and those of every pin rule that matches a name it presents. None: no pins apply, or it matches one.
let private pinRefusal (policy: DestinationPolicy) (link: Link) (certificate: PeerCertificate) =
    let port = hostAndPort link.Target.Destination |> Option.map (fun (_, p) -> p.Value) |> Option.defaultValue 0
    let pins = link.Pins @ pinsForCertificate policy certificate.Names port
    let serverName = link.Target.Tls |> Option.map (fun t -> t.ServerName.Canonical) |> Option.defaultValue link.Target.Destination.Text
    if pins.IsEmpty || certificate.Hashes |> List.exists (fun hash -> List.contains hash pins) then None
    else Some $"certificate does not match the pinned keys for {serverName}"

/// A second passed: count it against the idle timeout, and open a new second for the connect limit.
let private tick session =
    let quiet = session.QuietSeconds + 1
    let idle = session.Settings.IdleTimeoutSeconds
    if idle > 0 && quiet >= idle then
        { session with Phase = Ended },
        closeLinkOf session.Phase @ [ CloseClient(1000, $"idle timeout: no traffic for {idle} s") ]
    else
        { session with QuietSeconds = quiet; ConnectsThisSecond = 0 }, []

/// The transition function. Total: every input has a defined outcome in every phase; events of
/// any generation but the live one are stale and produce nothing.
let rec step (session: Session) (input: Input) : Session * Effect list =
    match input, session.Phase with
    | _, Ended -> session, []
    | Tick, _ -> tick session
    | (ClientText _ | ClientBinary _), _ when session.QuietSeconds > 0 -> step { session with QuietSeconds = 0 } input
    | Received(g, _), phase when session.QuietSeconds > 0 && (liveLink phase |> Option.exists (fun l -> l.Generation = g)) ->
        step { session with QuietSeconds = 0 } input
    | ClientGone, phase -> { session with Phase = Ended }, closeLinkOf phase
    | ClientMessageTooLarge limit, phase ->
        { session with Phase = Ended }, closeLinkOf phase @ [ CloseClient(1009, $"message exceeds {limit} bytes") ]
    | ClientMessageStalled seconds, phase ->
        { session with Phase = Ended }, closeLinkOf phase @ [ CloseClient(1008, $"message stalled: no bytes of it for {seconds} s") ]
    | HostFault reason, phase ->
        { session with Phase = Ended }, closeLinkOf phase @ [ Reply(Unexpected reason); CloseClient(1011, "unexpected server error") ]
    | ClientText frame, _ -> request session (Codec.parseRequest frame.Span)
    | ClientBinary bytes, _ -> request session (Valid(Forward bytes))

    | Resolved(g, addresses), Busy(Resolution link, pending) when sameGeneration link g ->
        let phase, effects, waiting = dialOrRefuse session link addresses pending
        match phase with
        | Busy _ -> { session with Phase = phase }, effects
        | _ -> settle session phase effects waiting
    | ResolveFailed g, Busy(Resolution link, pending) when sameGeneration link g ->
        let host = resolvedHop link.Target |> Option.map (fun (h, _) -> h.Written) |> Option.defaultValue link.Target.Destination.Text
        settle session Idle (endConnect link (connectFailure link $"host not found: {host}")) pending

    | Dialled g, Busy(Dialling({ Target = { Tls = Some tls } } as link, _, _), pending) when sameGeneration link g ->
        { session with Phase = Busy(Securing(link, AtConnect), pending) }, [ SecureConnection(g, tls.ServerName.Canonical) ]
    | Dialled g, Busy(Dialling(link, _, _), pending) when sameGeneration link g ->
        settle session (Open link) (answerConnect (Some g) (Done "connect")) pending

    | Secured(g, certificate), Busy(Securing(link, handshake), pending) when sameGeneration link g ->
        match pinRefusal session.Settings.Policy link certificate, handshake with
        | Some why, _ -> settle session Idle (tlsFailure link handshake why) pending
        | None, AtConnect -> settle session (Open link) (answerConnect (Some g) (Done "connect")) pending
        | None, InPlace -> settle session (Open link) [ Reply(Done "starttls") ] pending
    | SecureFailed(g, reason), Busy(Securing(link, handshake), pending) when sameGeneration link g ->
        settle session Idle (tlsFailure link handshake reason) pending
    | SecureTimedOut(g, seconds), Busy(Securing(link, handshake), pending) when sameGeneration link g ->
        settle session Idle (tlsTimeout session.Settings link handshake seconds) pending
    | (PeerFinished g | SocketFailed(g, _)), Busy(Securing(link, handshake), pending) when sameGeneration link g ->
        let reason =
            match input with
            | SocketFailed(_, why) -> $"the connection failed during the handshake: {why}"
            | _ -> "the peer closed the connection during the handshake"
        settle session Idle (tlsFailure link handshake reason) pending
    | DialFailedWith(g, _), Busy(Dialling(link, attempts, next :: rest), pending) when sameGeneration link g ->
        { session with Phase = Busy(Dialling(link, attempts, rest), pending) }, startAttempt session.Settings link next rest
    | DialFailedWith(g, _), Busy(Dialling(link, attempts, []), pending) when sameGeneration link g && attempts > 1 ->
        { session with Phase = Busy(Dialling(link, attempts - 1, []), pending) }, []
    | DialFailedWith(g, error), Busy(Dialling(link, _, []), pending) when sameGeneration link g ->
        settle session Idle (endConnect link (connectFailure link error.Message)) pending
    | AttemptTimerFired g, Busy(Dialling(link, attempts, next :: rest), pending) when sameGeneration link g ->
        { session with Phase = Busy(Dialling(link, attempts + 1, rest), pending) }, startAttempt session.Settings link next rest

    | ConnectTimerFired g, Busy((Resolution link | Dialling(link, _, _) | Securing(link, AtConnect)), pending) when sameGeneration link g ->
        settle session Idle (connectTimedOut session.Settings link) pending

    | WriteCompleted g, Busy(Writing(link, answer, peerFinished), pending) when sameGeneration link g ->
        let answer = Option.toList answer |> List.map Reply
        if peerFinished then settle session Idle (answer @ [ CloseConnection g ]) pending
        else settle session (Open link) answer pending

    // A peer that speaks before a `tls` connect's handshake is not speaking TLS: its plaintext must not
    // pass for bytes that came over TLS. (Before a `starttls` it is the protocol's plaintext: relayed.)
    | Received(g, _), Busy(Securing(link, AtConnect), pending) when sameGeneration link g ->
        settle session Idle (tlsFailure link AtConnect "the peer sent bytes before the TLS handshake") pending
    | Received(g, bytes), (Open link | HalfClosed link | Busy(Writing(link, _, false), _) | Busy(Securing(link, InPlace), _)) when sameGeneration link g ->
        session, deliver link bytes

    | PeerFinished g, (Open link | HalfClosed link) when sameGeneration link g ->
        { session with Phase = Idle }, [ Reply(ClosedByPeer None); CloseConnection g ]
    | PeerFinished g, Busy(Writing(link, answer, false), pending) when sameGeneration link g ->
        { session with Phase = Busy(Writing(link, answer, true), pending) }, [ Reply(ClosedByPeer None) ]

    | SocketFailed(g, reason), (Open link | HalfClosed link) when sameGeneration link g ->
        { session with Phase = Idle }, [ CloseConnection g; Reply(ClosedByPeer(Some reason)) ]
    | SocketFailed(g, reason), Busy(Writing(link, answer, peerFinished), pending) when sameGeneration link g ->
        // The end is reported (unless code 5 was sent already), then the failed write is answered with code 3.
        let event = if peerFinished then [] else [ Reply(ClosedByPeer(Some reason)) ]
        let answer = answer |> Option.map (fun _ -> Reply IllegalSocketState) |> Option.toList
        settle session Idle (CloseConnection g :: event @ answer) pending
    | SocketFailed(g, reason), Busy((Resolution link | Dialling(link, _, _)), pending) when sameGeneration link g ->
        settle session Idle (endConnect link (connectFailure link reason)) pending

    // Anything else is a stale or out-of-place event: it changes nothing.
    | Resolved _, _
    | ResolveFailed _, _
    | Dialled _, _
    | Secured _, _
    | SecureFailed _, _
    | SecureTimedOut _, _
    | DialFailedWith _, _
    | Received _, _
    | PeerFinished _, _
    | SocketFailed _, _
    | WriteCompleted _, _
    | ConnectTimerFired _, _
    | AttemptTimerFired _, _ -> session, []
