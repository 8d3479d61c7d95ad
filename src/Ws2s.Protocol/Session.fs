/// (Longer than 250 lines on purpose: the whole state machine in one file, one `step` read top to bottom.)
///
/// The ws2s session as a pure state machine: `step session now input` gives the next session and the
/// effects the driver must carry out, in order. No IO, no clock, no threads: time arrives as `now` with
/// every input (quinn's way), and `nextDeadline` says when the session must be woken (`Wake`) if
/// nothing else happens first; sockets arrive as events tagged with the generation of their connection.
///
/// Every transition is in `step` (socket and timer events) and `execute` (client requests);
/// spec/protocol.md draws the same table.
module Ws2s.Protocol.Session

open System
open System.Net
open Ws2s.Protocol.Addresses
open Ws2s.Protocol.Policy
open Ws2s.Protocol.TlsPolicy
open Ws2s.Protocol.Resumption

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
      /// A client message begun must keep coming: no byte of it for this many seconds closes the session (1008).
      MessageTimeoutSeconds: int
      /// Connects a session may start in any one second; more get code 2. 0: no limit.
      MaxConnectsPerSecond: int
      /// Where SSH tunnels may lead (judged on the final host:port); empty: anywhere.
      SshAllowTargets: Rule list
      /// May this session open SSH tunnels at all? (A signed token's `ssh: false` says no.)
      SshAllowed: bool
      /// RFC 8305's connection attempt delay: while an attempt is pending, the next address is tried after this many milliseconds.
      AttemptDelayMilliseconds: int
      /// UDP destinations: None, refused (`udp.enabled` false, the default); Some rules, allowed where the policy allows the
      /// address and, when there are rules (`udp.allow`), one of them lists it.
      Udp: Rule list option
      /// Admitted past the session limits to resume a session that holds a slot already: a `resume` is all it may ask.
      OnlyToResume: bool
      /// How connections that ask to be resumable outlive their client's WebSocket (grace 0: they are not offered it).
      Resume: ResumeSettings }

let defaultSettings =
    { Policy = serverLocalOnly false
      ConnectTimeoutSeconds = 10
      MaxPending = 64
      MaxPendingBytes = 4 <<< 20
      IdleTimeoutSeconds = 3600
      MessageTimeoutSeconds = 30
      MaxConnectsPerSecond = 10
      SshAllowTargets = []
      SshAllowed = true
      AttemptDelayMilliseconds = 250
      Udp = None
      OnlyToResume = false
      Resume = Resumption.defaultSettings }

/// The connection to the peer a session owns, or is opening: one generation (the runner's `Connection`
/// carries out its effects). `Pins`: the certificate pins its destination
/// has in the policy (by name, TLS server name and resolved address), for when it goes TLS (the
/// certificate's own names add theirs when it arrives); `Began`: when its connect began (it must be
/// connected, and secured if it asked for TLS, within the connect timeout from then).
type Connection = { Generation: Generation; Route: Route; Pins: string list; Began: Instant }

/// Why a TLS handshake runs: the connect asked for `tls` (it runs under the connect's deadline), or
/// `starttls` upgrades an open connection (`Began`: then; it has the connect timeout from then).
type Handshake =
    | AtConnect
    | InPlace of Began: Instant

/// What a busy session is waiting for. Requests that arrive meanwhile wait in order.
type Awaiting =
    | Resolution of Connection
    /// Dialling: `Attempts` dials in flight (happy eyeballs starts another every 250 ms while one is
    /// pending, RFC 8305: `LastAttempt` says when the latest began); `Rest` are the allowed endpoints still to try.
    | Dialling of Connection * attempts: int * rest: IPEndPoint list * lastAttempt: Instant
    /// A write is in flight; `Answer` is sent when it completes. `PeerFinished`: the peer already
    /// closed its side (code 5 was sent), so the connection ends when the write does.
    | Writing of Connection * answer: Response option * peerFinished: bool
    /// The TLS handshake on the connection (its `Route.Tls` says with which server name).
    | Securing of Connection * Handshake
    /// A `resume`: the driver is asking the session that holds the token to be taken over.
    | Resuming

type Phase =
    /// No connection: sends get code 3.
    | Idle
    /// Connected and ready.
    | Open of Connection
    /// `shutdown` sent FIN: the peer may still send, nothing more is written.
    | HalfClosed of Connection
    /// Waiting for an outcome; the list holds the requests that arrived since, oldest first.
    | Busy of Awaiting * pending: Request list
    /// The client is gone; nothing happens any more.
    | Ended

type Session =
    { Settings: Settings
      /// The generation the next connection gets.
      NextGeneration: Generation
      Phase: Phase
      /// When the last frame went either way (the idle timeout counts from here).
      LastActivity: Instant
      /// When the connects of the last second began, newest first (the connect rate limit looks no further back).
      RecentConnects: Instant list
      /// A client message is under way: when it stalls if no more of it arrives.
      MessageStallsAt: Instant option
      /// Why this session may start no more connects (its signed token expired), if so; the open connection goes on.
      ConnectsEnded: string option
      /// What a resumable connection keeps for its client (from its `connect done` until a new `connect` or a `close`).
      Resumable: Resumption option
      /// The client was lost at this moment and the session is suspended, waiting for a resume; None: it has its client.
      SuspendedAt: Instant option }

/// The settings narrowed to the destinations `rules` allow (a per-session scope; never wider).
let narrowTo (rules: Rule list) (settings: Settings) = { settings with Policy = narrow rules settings.Policy }

/// The settings with SSH tunnels refused for this session (code 4).
let withoutSsh (settings: Settings) = { settings with SshAllowed = false }

/// The settings of a session admitted past the session limits to resume another (which holds the slot): any request but
/// `resume` ends it (1008), and so does a refused resume, after its answer.
let onlyToResume (settings: Settings) = { settings with OnlyToResume = true }

let private overLimit = "admitted past the session limits to resume a session: resume is all this WebSocket may ask"

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
        { session with Settings = { server with Policy = policy; SshAllowed = own.SshAllowed && server.SshAllowed; OnlyToResume = own.OnlyToResume } }

/// A new session, begun at `now`.
let start settings (now: Instant) =
    { Settings = settings
      NextGeneration = 1L
      Phase = Idle
      LastActivity = now
      RecentConnects = []
      MessageStallsAt = None
      ConnectsEnded = None
      Resumable = None
      SuspendedAt = None }

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
let liveConnection phase =
    match phase with
    | Open connection
    | HalfClosed connection
    | Busy(Resolution connection, _)
    | Busy(Dialling(connection, _, _, _), _)
    | Busy(Writing(connection, _, _), _)
    | Busy(Securing(connection, _), _) -> Some connection
    | Busy(Resuming, _)
    | Idle
    | Ended -> None

/// The bytes a queued request holds.
let private weight request =
    match request with
    | Valid(Send b | SendBytes b | Forward b) -> b.Length
    | Valid(Connect t) -> t.Destination.Text.Length
    | Valid(Close | Shutdown | Ping | StartTls _ | Ack _ | Resume _) | Rejected _ -> 0

let private queueIsFull settings (pending: Request list) =
    List.length pending >= settings.MaxPending || List.sumBy weight pending >= settings.MaxPendingBytes

/// The payload bytes of the requests waiting behind the pending operation: what this session holds
/// for its client beyond the operation in flight (the runner adds it to the server-wide budget).
let queuedBytes session =
    match session.Phase with
    | Busy(_, pending) -> List.sumBy weight pending
    | Idle
    | Open _
    | HalfClosed _
    | Ended -> 0

/// May the driver read the peer now? Not while a resumable connection keeps as much as it may (`MaxBufferedBytes` its client
/// has not acknowledged), with its client or without: flow control, as TCP's window (a client that drops could otherwise
/// lose what was in flight to it, which on a real network is megabytes).
let acceptsPeerData session =
    match session.Resumable with
    | Some resumption -> resumption.Kept.Length < int64 session.Settings.Resume.MaxBufferedBytes
    | None -> true

/// The peer's bytes the session keeps for a resume (the runner adds them to the server-wide budget).
let keptBytes session =
    match session.Resumable with
    | Some resumption -> resumption.Kept.Length
    | None -> 0L

/// May the driver feed another client frame now? (False when the queue is full, or after the end.)
let acceptsRequest session =
    match session.Phase with
    | Busy(Resuming, _) -> false // what comes next is for the session it resumes, if it does
    // Nor behind a queued `resume`: its WebSocket may go to another session, with the reader at its wait for a grant.
    | Busy(_, pending) when pending |> List.exists (function Valid(Resume _) -> true | _ -> false) -> false
    | Busy(_, pending) -> not (queueIsFull session.Settings pending)
    | Ended -> false
    | Idle
    | Open _
    | HalfClosed _ -> true

/// Special-use names (RFC 6761) answered without asking DNS: `localhost` and `*.localhost` are the
/// loopback addresses, `*.invalid` never exists. IP literals need no resolution. Other names: None (resolve them).
let knownAddresses (host: HostName) : IPAddress list option =
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
let private resolvedHop (route: Route) =
    match route.Ssh with
    | Some ssh -> Some(ssh.Host, ssh.Port)
    | None -> hostAndPort route.Destination

/// Dial the hop at a checked address: directly, or log into the SSH server and open a channel to the target.
let private dialEffect (connection: Connection) endpoint =
    let hop =
        match connection.Route.Ssh, connection.Route.Destination with
        | Some login, TcpPeer(host, port) -> SshHop(endpoint, login, host, port)
        | _, UdpPeer _ -> UdpHop endpoint
        | _ -> TcpHop endpoint
    Dial(connection.Generation, hop)

/// Start dialling `endpoint` at `now`, as the latest of `attempts` in flight (while more endpoints wait, the
/// next starts alongside after the attempt delay: see `deadlineOf`).
let private startAttempt now (connection: Connection) attempts endpoint (rest: IPEndPoint list) =
    Dialling(connection, attempts, rest, now), [ dialEffect connection endpoint ]

/// Does happy eyeballs start another attempt while this one is pending? (Direct connections only: a
/// tunnel's attempts are logins, tried one at a time.)
let private racesAttempts (connection: Connection) (rest: IPEndPoint list) = not rest.IsEmpty && connection.Route.Ssh.IsNone

/// Why a connect failed, as the code the client expects: 6 through an SSH server, else 2.
let private connectFailure (connection: Connection) reason =
    match connection.Route.Ssh with
    | Some _ -> SshFailed reason
    | None -> ConnectFailed reason

let private closeConnectionOf phase =
    match liveConnection phase with
    | Some connection -> [ CloseConnection connection.Generation ]
    | None -> []

/// The answer to a connect, and how it ended for the driver's metrics (`took`: milliseconds since it began, if it had a connection).
let private answerConnect (took: int64 option) (response: Response) =
    [ Reply response; Observe(ConnectAnswered(took, response.Code)) ]

/// A connect that got as far as a connection of its own ends at `now`: that connection closed, the answer given.
let private endConnect (now: Instant) (connection: Connection) (response: Response) =
    CloseConnection connection.Generation :: answerConnect (Some(now.Since connection.Began)) response

/// Where `tls.required` and pins look: the final destination's name (and TLS server name), and the
/// addresses dialled when they are the destination's own; through an SSH server, which resolves the
/// target, only the addresses that need no resolver (an IP literal, `localhost`).
let private destination (route: Route) (host: HostName) (addresses: IPAddress list) =
    let names = host :: (route.Tls |> Option.map (fun t -> t.ServerName) |> Option.toList)
    names, (if route.Ssh.IsSome then knownAddresses host |> Option.defaultValue [] else addresses)

let private tlsNeeded rule = $"tls.required {rule}: connect with \"tls\": true"

/// Why a UDP destination is refused before the policy judges its addresses, if it is: UDP is off, or `udp.allow`
/// does not list every address (or the name asked for).
let private udpRefusal settings (destination: Destination) (host: HostName) (addresses: IPAddress list) (port: Port) =
    match destination, settings.Udp with
    | UdpPeer _, None -> Some "UDP is off on this server (udp.enabled)"
    | UdpPeer _, Some rules when not rules.IsEmpty ->
        let listed (a: IPAddress) = rules |> List.exists (fun r -> matchesAddress r (canonical a) port.Value || matchesName r host port.Value)
        if addresses |> List.forall listed then None else Some "not in udp.allow"
    | _ -> None

/// Judge the resolved addresses, then dial the first allowed endpoint or answer why not.
let private dialOrRefuse session now (connection: Connection) (addresses: IPAddress list) pending =
    match resolvedHop connection.Route, hostAndPort connection.Route.Destination with
    | Some(host, port), Some(finalHost, finalPort) ->
        let policy = session.Settings.Policy
        let names, ownAddresses = destination connection.Route finalHost addresses
        let tlsMissing =
            if connection.Route.Tls.IsSome then None
            else tlsRequirement policy finalHost ownAddresses finalPort.Value
        let verdict =
            match udpRefusal session.Settings connection.Route.Destination host addresses port with
            | Some why -> Refused why
            | None -> judgeAll policy host addresses port.Value
        match verdict, tlsMissing with
        | Refused rule, _ ->
            Idle, endConnect now connection (Forbidden(host.Written, rule)), pending
        | Allowed, Some rule ->
            Idle, endConnect now connection (Forbidden(finalHost.Written, tlsNeeded rule)), pending
        | Allowed, None ->
            let connection = { connection with Pins = pinsFor policy names ownAddresses finalPort.Value }
            match dialOrder addresses port with
            | [] -> Idle, endConnect now connection (connectFailure connection $"host not found: {host}"), pending
            | first :: rest ->
                let dialling, effects = startAttempt now connection 1 first rest
                Busy(dialling, pending), effects, []
    | _ -> Idle, endConnect now connection (BadRequest "an SSH tunnel leads to a host and port only"), pending // refused in `execute` before

/// Judge a destination listed by name (a Unix path, a named peer), then dial it or answer why not.
let private dialListed session now (connection: Connection) =
    let policy = session.Settings.Policy
    let peer = connection.Route.Destination
    let tlsMissing = if connection.Route.Tls.IsSome then None else peerTlsRequirement policy peer
    let hop =
        match peer with
        | UnixPeer path -> Some(UnixHop path)
        | NamedPeer(scheme, name) -> Some(NamedHop(scheme, name))
        | TcpPeer _ | UdpPeer _ -> None
    match judgePeer policy peer, tlsMissing, hop with
    | Refused rule, _, _ -> Idle, endConnect now connection (Forbidden(peer.Text, rule))
    | Allowed, Some rule, _ -> Idle, endConnect now connection (Forbidden(peer.Text, tlsNeeded rule))
    | Allowed, None, None -> Idle, endConnect now connection (ConnectFailed "not a destination listed by name") // unreachable: hosts resolve
    | Allowed, None, Some hop ->
        let serverNames = connection.Route.Tls |> Option.map (fun t -> t.ServerName) |> Option.toList
        let connection = { connection with Pins = peerPins policy peer serverNames }
        Busy(Dialling(connection, 1, [], now), []), [ Dial(connection.Generation, hop) ]

/// Why a tunnel's final destination is refused (`ssh.allowTargets`, the session's scopes, plaintext to
/// a `tls.required` destination), if it is.
let private tunnelRefusal settings (route: Route) =
    match hostAndPort route.Destination with
    | None -> Some "an SSH tunnel leads to a host and port only"
    | Some(host, port) ->
    match judgeTunnelTarget settings.SshAllowTargets settings.Policy.Scopes host port.Value with
    | Refused why -> Some why
    | Allowed when route.Tls.IsSome -> None
    | Allowed -> tunnelTlsRequirement settings.Policy host (knownAddresses host) port.Value |> Option.map tlsNeeded

/// A sliding one-second rate: are `recent` (moments, newest first) at `limit` within the second before `now`? (0: no limit.)
let internal overRate limit (now: Instant) (recent: Instant list) =
    limit > 0 && (recent |> List.filter (fun at -> now.Since at < 1000L) |> List.length) >= limit

/// `recent` with `now` recorded, and nothing older than a second kept (nothing at all without a limit).
let internal recordRate limit (now: Instant) (recent: Instant list) =
    if limit > 0 then now :: (recent |> List.filter (fun at -> now.Since at < 1000L)) else []

/// The session took `bytes` of its client's data for the peer (counted for a resume).
let private took session (bytes: ReadOnlyMemory<byte>) =
    match session.Resumable with
    | Some resumption -> { session with Resumable = Some { resumption with Taken = resumption.Taken + int64 bytes.Length } }
    | None -> session

/// Carry out one request, at `now`, in a phase that is not busy.
let private execute session (now: Instant) request : Session * Effect list =
    let reply response = session, [ Reply response ]
    match request, session.Phase with
    | _, (Busy _ | Ended) -> session, [] // unreachable: `request` queues or drops these
    | (Rejected _ | Valid(Connect _ | Send _ | SendBytes _ | Close | Shutdown | Ping | Forward _ | StartTls _ | Ack _)), phase when session.Settings.OnlyToResume ->
        { session with Phase = Ended }, closeConnectionOf phase @ [ Effect.closeClient 1008 overLimit ]
    | Rejected response, _ -> reply response
    | Valid(Connect route), _ when session.ConnectsEnded.IsSome ->
        session, answerConnect None (Forbidden(route.Destination.Quoted, session.ConnectsEnded.Value))
    | Valid(Connect _), _ when overRate session.Settings.MaxConnectsPerSecond now session.RecentConnects ->
        session, answerConnect None (ConnectFailed $"too many connects: at most {session.Settings.MaxConnectsPerSecond} per second")
    | Valid(Connect({ Ssh = Some _ } as route)), _ when not session.Settings.SshAllowed ->
        session, answerConnect None (Forbidden(route.Destination.Quoted, "SSH tunnels are not in this session's scope"))
    | Valid(Connect({ Ssh = Some _ } as route)), _ when (tunnelRefusal session.Settings route).IsSome ->
        session, answerConnect None (Forbidden(route.Destination.Quoted, (tunnelRefusal session.Settings route).Value))
    | Valid(Connect route), phase ->
        let closeOld = closeConnectionOf phase
        let generation = session.NextGeneration
        let connection = { Generation = generation; Route = route; Pins = []; Began = now }
        let session =
            { session with
                NextGeneration = generation + 1L
                Phase = Idle
                Resumable = None
                RecentConnects = recordRate session.Settings.MaxConnectsPerSecond now session.RecentConnects }
        match resolvedHop route |> Option.map (fun (host, _) -> host, knownAddresses host) with
        | Some(host, None) ->
            { session with Phase = Busy(Resolution connection, []) }, closeOld @ [ Resolve(generation, host.Canonical) ]
        | Some(_, Some addresses) ->
            let phase, effects, _ = dialOrRefuse session now connection addresses []
            { session with Phase = phase }, closeOld @ effects
        | None ->
            let phase, effects = dialListed session now connection
            { session with Phase = phase }, closeOld @ effects
    | Valid(Send bytes | SendBytes bytes as command), Open connection ->
        { took session bytes with Phase = Busy(Writing(connection, Some(Done command.Name), false), []) }, [ Write(connection.Generation, bytes) ]
    | Valid(Forward bytes), Open connection ->
        { took session bytes with Phase = Busy(Writing(connection, None, false), []) }, [ Write(connection.Generation, bytes) ]
    | Valid(Send _ | SendBytes _ | Forward _), _ -> reply IllegalSocketState
    | Valid Close, phase -> { session with Phase = Idle; Resumable = None }, closeConnectionOf phase @ [ Reply(Done "close") ]
    | Valid Shutdown, Open connection ->
        { session with Phase = HalfClosed connection }, [ ShutdownConnection connection.Generation; Reply(Done "shutdown") ]
    | Valid Shutdown, HalfClosed _ -> reply (Done "shutdown")
    // The peer ended while a resumable connection's client was away: a `shutdown` sent again after the resume (its answer was
    // lost, and it may have been done) is done, the connection being gone either way.
    | Valid Shutdown, Idle when session.Resumable.IsSome -> reply (Done "shutdown")
    | Valid Shutdown, _ -> reply IllegalSocketState
    | Valid Ping, _ -> reply (Done "ping")
    | Valid(StartTls _), Open { Route = { Tls = Some _ } } -> reply (BadRequest "the connection is TLS already")
    | Valid(StartTls _), Open _ when session.Resumable.IsSome -> reply (BadRequest "starttls: not on a resumable connection")
    | Valid(StartTls serverName), Open connection ->
        match serverName |> Option.orElse connection.Route.Destination.Host with
        | None -> reply (BadRequest "starttls on a connection to a unix: socket needs tlsServerName (the name its certificate is checked against)")
        | Some name ->
            let port = hostAndPort connection.Route.Destination |> Option.map (fun (_, p) -> p.Value) |> Option.defaultValue 0
            let pins = connection.Pins @ pinsFor session.Settings.Policy [ name ] [] port |> List.distinct
            let connection = { connection with Route = { connection.Route with Tls = Some { ServerName = name } }; Pins = pins }
            { session with Phase = Busy(Securing(connection, InPlace now), []) }, [ SecureConnection(connection.Generation, name.Canonical) ]
    | Valid(StartTls _), _ -> reply IllegalSocketState
    // The acknowledgement itself was taken as it arrived (`request`); its answer comes in turn.
    | Valid(Ack _), _ ->
        match session.Resumable with
        | Some resumption -> reply (AckDone resumption.Taken)
        | None -> reply (BadRequest "ack: the connection is not resumable")
    | Valid(Resume(token, received)), Idle when session.Resumable.IsNone -> { session with Phase = Busy(Resuming, []) }, [ HandOver(token, received) ]
    // (Idle keeping a resumable connection's end counts as a connection: a refused resume must change nothing.)
    | Valid(Resume _), _ -> reply (BadRequest "resume needs a session without a connection")

/// Run queued requests in order until one makes the session busy again; the rest stay queued.
let rec private drain session now (pending: Request list) effects =
    match pending, session.Phase with
    | [], _ -> session, effects
    | _, Busy(awaiting, queued) -> { session with Phase = Busy(awaiting, queued @ pending) }, effects
    | _, Ended -> session, effects
    | request :: rest, _ ->
        let session, more = execute session now request
        drain session now rest (effects @ more)

/// The busy phase is over: set the new phase, then run what waited behind it.
let private settle session now phase effects pending =
    drain { session with Phase = phase } now pending effects

/// The session ends: its connection closed, and the client closed with `status` and `reason`.
let private endSession session status reason =
    { session with Phase = Ended }, closeConnectionOf session.Phase @ [ Effect.closeClient status reason ]

/// An `ack` counts when it arrives, busy or not (a client waiting for room to send would otherwise hold what it had
/// acknowledged): what was kept before its `received` goes; one that does not fit what was sent becomes code 7.
let private acknowledged session (request: Request) =
    match request, session.Resumable with
    | Valid(Ack _), None -> session, Rejected(BadRequest "ack: the connection is not resumable")
    | Valid(Ack received), Some resumption ->
        match ackRefusal received resumption with
        | Some why -> session, Rejected(BadRequest why)
        | None -> { session with Resumable = Some(acknowledge received resumption) }, request
    | _ -> session, request

/// A client request at `now`: run it now, or queue it behind the pending operation.
let request session now (request: Request) =
    let session, request = if session.Phase.IsEnded then session, request else acknowledged session request
    match session.Phase with
    | Ended -> session, []
    | Busy(_, pending) when queueIsFull session.Settings pending ->
        endSession session 1008 "too many requests queued behind a pending operation"
    | Busy(awaiting, pending) -> { session with Phase = Busy(awaiting, pending @ [ request ]) }, []
    | Idle
    | Open _
    | HalfClosed _ -> execute session now request

let private deliver (connection: Connection) (bytes: ReadOnlyMemory<byte>) =
    if bytes.IsEmpty then []
    elif connection.Route.Binary then [ ReplyBinary bytes ]
    else [ Reply(RecvData bytes) ]

let private sameGeneration (connection: Connection) generation = connection.Generation = generation

/// The connect is done at `now`: the connection is open (resumable if it asked and the server offers it), and what
/// waited behind the connect runs.
let private connected session now (connection: Connection) pending =
    let resumable = connection.Route.Resumable && session.Settings.Resume.GraceSeconds > 0
    let session = { session with Resumable = if resumable then Some(opened connection.Route.Binary) else None }
    let answer = if resumable then ConnectedResumable else Done "connect"
    settle session now (Open connection) (answerConnect (Some(now.Since connection.Began)) answer) pending

/// A TLS handshake failed (code 8): a connect ends as a failed connect; an upgraded connection is closed.
let private tlsFailure now (connection: Connection) handshake reason =
    match handshake with
    | AtConnect -> endConnect now connection (TlsFailed reason)
    | InPlace _ -> [ CloseConnection connection.Generation; Reply(TlsFailed reason) ]

/// When the connect that opened `connection` runs out of time (resolving, dialling, or in its TLS handshake).
let private connectDeadline settings (connection: Connection) = connection.Began.PlusSeconds settings.ConnectTimeoutSeconds

/// When the busy phase needs the session woken, if it does: the connect's deadline, the next happy-eyeballs
/// attempt, a `starttls` handshake's deadline (it has the connect timeout).
let private busyDeadline settings awaiting =
    match awaiting with
    | Resolution connection
    | Securing(connection, AtConnect) -> Some(connectDeadline settings connection)
    | Dialling(connection, _, rest, lastAttempt) when racesAttempts connection rest ->
        Some(min (connectDeadline settings connection) (lastAttempt.PlusMilliseconds(int64 settings.AttemptDelayMilliseconds)))
    | Dialling(connection, _, _, _) -> Some(connectDeadline settings connection)
    | Securing(_, InPlace began) -> Some(began.PlusSeconds settings.ConnectTimeoutSeconds)
    | Writing _ | Resuming -> None

/// When a suspended session's grace ends, if it is suspended.
let private graceEnds session =
    session.SuspendedAt |> Option.map (fun lost -> lost.PlusSeconds session.Settings.Resume.GraceSeconds)

/// When the session must be woken (`Wake`) if nothing else happens first: the earliest of its busy
/// phase's deadline, a stalled client message, the idle timeout and a suspended session's grace. None: never (it has ended).
let nextDeadline (session: Session) : Instant option =
    let settings = session.Settings
    let busy =
        match session.Phase with
        | Busy(awaiting, _) -> busyDeadline settings awaiting
        | Idle | Open _ | HalfClosed _ | Ended -> None
    let idle =
        if settings.IdleTimeoutSeconds > 0 then Some(session.LastActivity.PlusSeconds settings.IdleTimeoutSeconds) else None
    let earlier (a: Instant option) (b: Instant option) =
        match a, b with
        | Some x, Some y when y < x -> b
        | None, _ -> b
        | _ -> a
    match session.Phase with
    | Ended -> None
    | _ -> earlier (earlier (earlier busy session.MessageStallsAt) idle) (graceEnds session)

/// The busy phase's deadline has come at `now`: start the next attempt (happy eyeballs), or end the
/// connect (code 2, 6 through an SSH server) or the `starttls` (closing the connection) that ran out of time.
let private busyExpired session now awaiting pending =
    let settings = session.Settings
    let timedOut (connection: Connection) = connectFailure connection $"connect timed out after {settings.ConnectTimeoutSeconds} s"
    match awaiting with
    | Resolution connection
    | Dialling(connection, _, _, _)
    | Securing(connection, AtConnect) when now >= connectDeadline settings connection ->
        settle session now Idle (endConnect now connection (timedOut connection)) pending
    | Dialling(connection, attempts, next :: rest, _) when racesAttempts connection (next :: rest) ->
        let dialling, effects = startAttempt now connection (attempts + 1) next rest
        { session with Phase = Busy(dialling, pending) }, effects
    | Securing(connection, InPlace _) ->
        let words = $"tls handshake did not finish within {settings.ConnectTimeoutSeconds} s"
        settle session now Idle [ CloseConnection connection.Generation; Reply(ConnectFailed words) ] pending
    | Resolution _ | Dialling _ | Securing _ | Writing _ | Resuming -> session, []

/// Act on every deadline due by `now`, earliest first, until none is (or the session ends).
let rec private expire session (now: Instant) effects =
    match nextDeadline session with
    | Some due when due <= now ->
        let settings = session.Settings
        let session, more =
            match session.Phase with
            | Busy(awaiting, pending) when busyDeadline settings awaiting = Some due -> busyExpired session now awaiting pending
            | _ when graceEnds session = Some due ->
                let ended, effects = endSession session 1001 $"the client did not resume within {settings.Resume.GraceSeconds} s"
                ended, effects @ [ Observe Expired ]
            | _ when session.MessageStallsAt = Some due ->
                endSession session 1008 $"message stalled: no bytes of it for {settings.MessageTimeoutSeconds} s"
            | _ -> endSession session 1000 $"idle timeout: no traffic for {settings.IdleTimeoutSeconds} s"
        expire session now (effects @ more)
    | _ -> session, effects

/// Why the certificate fails the pins that apply to it, if it does: those of the destination (`connection.Pins`)
/// and those of every pin rule that matches a name it presents. None: no pins apply, or it matches one.
let private pinRefusal (policy: DestinationPolicy) (connection: Connection) (certificate: PeerCertificate) =
    let port = hostAndPort connection.Route.Destination |> Option.map (fun (_, p) -> p.Value) |> Option.defaultValue 0
    let pins = connection.Pins @ pinsForCertificate policy certificate.Names port
    let serverName = connection.Route.Tls |> Option.map (fun t -> t.ServerName.Canonical) |> Option.defaultValue connection.Route.Destination.Text
    if pins.IsEmpty || certificate.Hashes |> List.exists (fun hash -> List.contains hash pins) then None
    else Some $"certificate does not match the pinned keys for {serverName}"

/// A frame went either way at `now`: the idle timeout counts from here.
let private active now session =
    if session.LastActivity = now then session else { session with LastActivity = now }

/// One input, at `now`, once every deadline due by then has been acted on.
let private handle (session: Session) (now: Instant) (input: Input) : Session * Effect list =
    match input, session.Phase with
    | _, Ended -> session, []
    | Wake, _ -> session, []
    // Suspended, the session has no client: what a client reader of the past still says is stale.
    | (ClientText _ | ClientBinary _ | ClientGone | ClientLost | ClientMessageTooLarge _ | ClientMessageProgress), _ when session.SuspendedAt.IsSome ->
        session, []
    | ClientLost, _ when session.Resumable.IsSome && session.Settings.Resume.GraceSeconds > 0 ->
        { session with SuspendedAt = Some now; MessageStallsAt = None }, [ Observe Suspended ]
    | (ClientGone | ClientLost), phase -> { session with Phase = Ended }, closeConnectionOf phase @ [ CloseClient(1000, "") ]
    | ResumeRefused reason, Busy(Resuming, _) when session.Settings.OnlyToResume ->
        let ended, effects = endSession session 1008 overLimit
        ended, Reply(ResumeFailed reason) :: effects
    | ResumeRefused reason, Busy(Resuming, pending) -> settle session now Idle [ Reply(ResumeFailed reason) ] pending
    // Its client is the resumed session's now: the close is for the log only (the driver has no WebSocket left to send it on).
    | ResumedElsewhere, Busy(Resuming, _) -> { session with Phase = Ended }, [ CloseClient(1000, "its WebSocket went on in the session it resumed") ]
    | ResumeAsked _, _ -> session, [] // answered before `handle` (see `resumeAsked`)
    | ServerStopping, _ -> endSession session 1001 "server shutting down"
    | ClientMessageTooLarge limit, _ -> endSession session 1009 $"message exceeds {limit} bytes"
    | ClientMessageProgress, _ when session.Settings.MessageTimeoutSeconds > 0 ->
        { session with MessageStallsAt = Some(now.PlusSeconds session.Settings.MessageTimeoutSeconds) }, []
    | ClientMessageProgress, _ -> session, []
    | RunnerFault reason, phase ->
        { session with Phase = Ended }, closeConnectionOf phase @ [ Reply(Unexpected reason); CloseClient(1011, "unexpected server error") ]
    | ClientText frame, _ -> request (active now session) now (Codec.parseRequest frame.Span)
    | ClientBinary bytes, _ -> request (active now session) now (Valid(Forward bytes))

    | Resolved(g, addresses), Busy(Resolution connection, pending) when sameGeneration connection g ->
        let phase, effects, waiting = dialOrRefuse session now connection addresses pending
        match phase with
        | Busy _ -> { session with Phase = phase }, effects
        | _ -> settle session now phase effects waiting
    // The driver would not look the name up (a rate of lookups per client): the connect fails in its words.
    | DialFailedWith(g, error), Busy(Resolution connection, pending) when sameGeneration connection g ->
        settle session now Idle (endConnect now connection (connectFailure connection error.Message)) pending
    | ResolveFailed g, Busy(Resolution connection, pending) when sameGeneration connection g ->
        let host = resolvedHop connection.Route |> Option.map (fun (h, _) -> h.Written) |> Option.defaultValue connection.Route.Destination.Text
        settle session now Idle (endConnect now connection (connectFailure connection $"host not found: {host}")) pending

    | Dialled g, Busy(Dialling({ Route = { Tls = Some tls } } as connection, _, _, _), pending) when sameGeneration connection g ->
        { session with Phase = Busy(Securing(connection, AtConnect), pending) }, [ SecureConnection(g, tls.ServerName.Canonical) ]
    | Dialled g, Busy(Dialling(connection, _, _, _), pending) when sameGeneration connection g -> connected session now connection pending

    | Secured(g, certificate), Busy(Securing(connection, handshake), pending) when sameGeneration connection g ->
        match pinRefusal session.Settings.Policy connection certificate, handshake with
        | Some why, _ -> settle session now Idle (tlsFailure now connection handshake why) pending
        | None, AtConnect -> connected session now connection pending
        | None, InPlace _ -> settle session now (Open connection) [ Reply(Done "starttls") ] pending
    | SecureFailed(g, reason), Busy(Securing(connection, handshake), pending) when sameGeneration connection g ->
        settle session now Idle (tlsFailure now connection handshake reason) pending
    | (PeerFinished g | SocketFailed(g, _)), Busy(Securing(connection, handshake), pending) when sameGeneration connection g ->
        let reason =
            match input with
            | SocketFailed(_, why) -> $"the connection failed during the handshake: {why}"
            | _ -> "the peer closed the connection during the handshake"
        settle session now Idle (tlsFailure now connection handshake reason) pending
    | DialFailedWith(g, _), Busy(Dialling(connection, attempts, next :: rest, _), pending) when sameGeneration connection g ->
        let dialling, effects = startAttempt now connection attempts next rest
        { session with Phase = Busy(dialling, pending) }, effects
    | DialFailedWith(g, _), Busy(Dialling(connection, attempts, [], last), pending) when sameGeneration connection g && attempts > 1 ->
        { session with Phase = Busy(Dialling(connection, attempts - 1, [], last), pending) }, []
    | DialFailedWith(g, error), Busy(Dialling(connection, _, [], _), pending) when sameGeneration connection g ->
        settle session now Idle (endConnect now connection (connectFailure connection error.Message)) pending

    | WriteCompleted g, Busy(Writing(connection, answer, peerFinished), pending) when sameGeneration connection g ->
        let answer = Option.toList answer |> List.map Reply
        if peerFinished then settle session now Idle (answer @ [ CloseConnection g ]) pending
        else settle session now (Open connection) answer pending

    // A peer that speaks before a `tls` connect's handshake is not speaking TLS: its plaintext must not
    // pass for bytes that came over TLS. (Before a `starttls` it is the protocol's plaintext: relayed.)
    | Received(g, _), Busy(Securing(connection, AtConnect), pending) when sameGeneration connection g ->
        settle session now Idle (tlsFailure now connection AtConnect "the peer sent bytes before the TLS handshake") pending
    | Received(g, bytes), (Open connection | HalfClosed connection | Busy(Writing(connection, _, false), _) | Busy(Securing(connection, InPlace _), _)) when sameGeneration connection g ->
        active now session, deliver connection bytes

    | PeerFinished g, (Open connection | HalfClosed connection) when sameGeneration connection g ->
        { session with Phase = Idle }, [ Reply(ClosedByPeer None); CloseConnection g ]
    | PeerFinished g, Busy(Writing(connection, answer, false), pending) when sameGeneration connection g ->
        { session with Phase = Busy(Writing(connection, answer, true), pending) }, [ Reply(ClosedByPeer None) ]

    | SocketFailed(g, reason), (Open connection | HalfClosed connection) when sameGeneration connection g ->
        { session with Phase = Idle }, [ CloseConnection g; Reply(ClosedByPeer(Some reason)) ]
    | SocketFailed(g, reason), Busy(Writing(connection, answer, peerFinished), pending) when sameGeneration connection g ->
        // The end is reported (unless code 5 was sent already), then the failed write is answered with code 3.
        let event = if peerFinished then [] else [ Reply(ClosedByPeer(Some reason)) ]
        let answer = answer |> Option.map (fun _ -> Reply IllegalSocketState) |> Option.toList
        settle session now Idle (CloseConnection g :: event @ answer) pending
    | SocketFailed(g, reason), Busy((Resolution connection | Dialling(connection, _, _, _)), pending) when sameGeneration connection g ->
        settle session now Idle (endConnect now connection (connectFailure connection reason)) pending

    // Anything else is a stale or out-of-place event: it changes nothing.
    | Resolved _, _
    | ResolveFailed _, _
    | Dialled _, _
    | Secured _, _
    | SecureFailed _, _
    | DialFailedWith _, _
    | Received _, _
    | PeerFinished _, _
    | SocketFailed _, _
    | WriteCompleted _, _
    | ResumeRefused _, _
    | ResumedElsewhere, _ -> session, []
    | CredentialsAccepted _, _
    | CredentialsRefused _, _ -> session, [] // a ws2s session authenticates at the upgrade only

/// A resumable connection keeps what the session says to its client of the peer's (its bytes, copied, until the client
/// acknowledges them; its end, code 5). Suspended, the session says nothing to its client (it has none); one that no
/// longer has a resumable connection (a queued `connect` or `close` ran) ends.
let private recorded (session: Session) (effects: Effect list) =
    match session.Resumable, session.SuspendedAt with
    | _, _ when session.Phase.IsEnded -> session, effects
    | None, Some _ -> endSession session 1001 "the session's connection is no longer resumable"
    | None, None -> session, effects
    | Some resumption, suspended ->
        let keepFrom resumption effect =
            match effect with
            | Reply(RecvData bytes)
            | ReplyBinary bytes -> { resumption with Kept = keep bytes.Span resumption.Kept }
            | Reply(ClosedByPeer _ as peerEnd) -> { resumption with PeerEnd = Some peerEnd }
            | _ -> resumption
        let resumption = List.fold keepFrom resumption effects
        match suspended with
        | None -> { session with Resumable = Some resumption }, effects
        | Some _ ->
            let toClient effect =
                match effect with
                | Reply _ | ReplyBinary _ -> true
                | _ -> false
            { session with Resumable = Some resumption }, effects |> List.filter (toClient >> not)

/// A client that has had `received` bytes of the peer's asks to take this session over, at `now`: it does when the
/// session has a resumable connection and keeps what follows `received`. It hears what the session took, the kept bytes
/// from `received` on and the peer's end if it came; the session goes on with it. Otherwise it is told why, and nothing changes.
let private resumeAsked (session: Session) (now: Instant) (received: int64) =
    match session.Resumable with
    | None -> session, [ RefuseResume "no session holds this token" ]
    | Some resumption ->
    match resumeRefusal received resumption with
    | Some why -> session, [ RefuseResume why ]
    | None ->
        let queued =
            match session.Phase with
            | Busy(_, pending) -> pending |> List.sumBy (function Valid(Send b | SendBytes b | Forward b) -> int64 b.Length | _ -> 0L)
            | _ -> 0L
        let replay = Resumption.from received resumption.Kept
        let bytes = replay |> List.map (fun b -> if resumption.Binary then ReplyBinary b else Reply(RecvData b))
        let replayed = replay |> List.sumBy (fun b -> int64 b.Length)
        { session with
            SuspendedAt = None
            MessageStallsAt = None
            LastActivity = now
            // What it had is acknowledged: kept no more, the window open again (its lost acks may have said so).
            Resumable = Some(Resumption.acknowledge received resumption) },
        [ TakeClient; Reply(ResumeDone(resumption.Taken + queued, replayed)) ] @ bytes @ (resumption.PeerEnd |> Option.map Reply |> Option.toList)
        @ [ Observe(Resumed replayed) ]

/// The transition function: `input` happened at `now` (the driver's monotonic clock, never earlier than the
/// last `now`). Every deadline due by `now` is acted on first (whatever woke the session), then the input.
/// Total: every input has a defined outcome in every phase; events of any generation but the live one are
/// stale and produce nothing.
let step (session: Session) (now: Instant) (input: Input) : Session * Effect list =
    // A message that is here whole (or too large) did not stall, however late the driver hands it over.
    let session =
        match input, session.MessageStallsAt with
        | (ClientText _ | ClientBinary _ | ClientMessageTooLarge _), Some _ -> { session with MessageStallsAt = None }
        | _ -> session
    let handleRecorded session =
        match input with
        | ResumeAsked received when not session.Phase.IsEnded -> resumeAsked session now received // (a deadline just now may have ended it)
        | _ -> handle session now input ||> recorded
    match session.Phase, nextDeadline session with
    | Ended, _ -> session, []
    | _, Some due when due <= now ->
        let session, expired = expire session now [] ||> recorded
        let session, effects = handleRecorded session
        session, expired @ effects
    | _ -> handleRecorded session
