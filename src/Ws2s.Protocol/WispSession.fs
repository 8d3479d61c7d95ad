/// A Wisp connection (MercuryWorkshop's wisp-protocol, v1 and v2) as a pure state machine: many streams
/// over one WebSocket, keyed by the client's 32-bit stream id. Each stream is a ws2s session in binary mode
/// that made one connect (so it has the same host parsing, policy and scopes, dial order, happy eyeballs,
/// connect timeout and relay: one implementation of each); this module only multiplexes them, turns their
/// answers into CLOSE reasons, and grants credits (CONTINUE). A stream's failure never touches another.
/// spec/wisp.md says the same in tables.
module Ws2s.Protocol.WispSession

open System
open Ws2s.Protocol.Session
open Ws2s.Protocol.WispPacket

/// What this server offers on a Wisp endpoint, beyond the ws2s settings its streams connect under.
type WispSettings =
    { /// Packets a stream may hold queued for its peer: the credits CONTINUE grants (a new grant only once the last is
      /// used up, so a client that keeps to its credits never has more queued). Twice this many closes the stream (0x49).
      BufferPackets: int
      /// Streams one WebSocket may have open at once; one more is refused (0x49).
      MaxStreams: int
      /// Streams one WebSocket may open in any one second; more are refused (0x49). 0: no limit.
      MaxOpensPerSecond: int
      /// The server's message of the day (v2's MOTD extension), if any.
      Motd: string option
      /// The client offered a subprotocol at the upgrade: v2 (INFO first), else v1 (spec: "HTTP Behavior").
      Version2: bool
      /// The client came without a token where one is required: it must present one in its INFO (the password
      /// extension, the token as the password) before any stream. Only with `Version2`.
      Credentials: bool }

let defaultWispSettings =
    { BufferPackets = 128; MaxStreams = 256; MaxOpensPerSecond = 128; Motd = None; Version2 = false; Credentials = false }

/// Which version the connection speaks, as far as the client has said.
type Handshake =
    /// v1: no INFO; the first CONTINUE (stream 0) gave every stream its credits.
    | Version1
    /// v2: the server's INFO and CONTINUE are out; the client's first packet says whether it speaks v2 (an INFO) or v1 (anything else).
    | AwaitingClientInfo
    /// v2, the client's INFO read. `Confirm`: both offer stream-open confirmation (a CONTINUE when a stream's socket is connected).
    | Version2 of Confirm: bool
    /// v2 with credentials required: the server's INFO asks for them and no CONTINUE has gone out; the client's INFO must carry them.
    | AwaitingCredentials
    /// Its credentials are being checked (`CheckCredentials`); `Confirm` as in `Version2`.
    | CheckingCredentials of Confirm: bool

/// One stream: its ws2s session (`Inner`, one connect, binary mode) and what Wisp keeps beside it.
type Stream =
    { Id: uint32
      /// A UDP stream: each DATA is one datagram; no credits (the spec sends no CONTINUE for UDP).
      Udp: bool
      /// The generation of its connection: its id in the low 32 bits, the count of streams opened before it above.
      Generation: Generation
      Inner: Session
      /// When its CONNECT came (its connect's deadline counts from here).
      Began: Instant
      /// The credits of the last CONTINUE the client counts from (the first, on stream 0, for every stream).
      Grant: int
      /// DATA packets received since that CONTINUE: when they reach `Grant` the client has none left and waits for the next.
      ReceivedSinceGrant: int
      /// Bytes its inner session holds queued (kept here so the connection's total needs no walk over the streams).
      Queued: int
      /// Its inner session's next deadline (kept here so `Deadlines` can find it to move it).
      Due: Instant option }

type WispSession =
    { Wisp: WispSettings
      /// The session every new stream starts from: the settings (narrowed by this connection's scopes) and whether
      /// connects have ended (an expired token). It never connects itself.
      Template: Session
      Handshake: Handshake
      Streams: Map<uint32, Stream>
      /// How many streams `Streams` holds (a map counts by walking).
      StreamCount: int
      /// (deadline in ms, stream id) of every stream that has one: the earliest is one lookup away.
      Deadlines: Set<int64 * uint32>
      /// Streams opened so far (it numbers their generations).
      Opened: int64
      /// When the opens of the last second happened, newest first (none kept without a limit).
      RecentOpens: Instant list
      /// Bytes all streams hold queued (the driver counts them toward the server-wide budget).
      Queued: int
      /// When the last frame went either way, or the last stream closed (a connection without streams closes after the idle timeout).
      LastActivity: Instant
      MessageStallsAt: Instant option
      /// Credentials are required and must have arrived (and been checked) by then.
      CredentialsBy: Instant option
      Ended: bool }

/// The settings a stream's own session runs under: its queue is bounded by the credits (see `BufferPackets`), not by
/// its own limits; opens are limited per connection.
let private streamSettings (wisp: WispSettings) (settings: Settings) =
    { settings with MaxPending = 2 * wisp.BufferPackets; MaxPendingBytes = Int32.MaxValue; MaxConnectsPerSecond = 0; MessageTimeoutSeconds = 0 }

let private generationOf (opened: int64) (id: uint32) : Generation = (opened <<< 32) ||| int64 id

let private streamOf (generation: Generation) = uint32 (generation &&& 0xFFFFFFFFL)

let private send packet = ReplyBinary packet

/// A new Wisp connection begun at `now`, and what the server says first: v2's INFO (with its extensions), then the
/// CONTINUE on stream 0 that gives every stream its first credits (a v1 client reads it as the start, spec "Handshake Steps").
let start (settings: Settings) (wisp: WispSettings) (now: Instant) =
    let credentials = wisp.Version2 && wisp.Credentials
    let extensions =
        [ if settings.Udp.IsSome then { Id = ExtensionId.Udp; Payload = ReadOnlyMemory.Empty }
          // Required (1): the token goes as the password; the username is not checked.
          if credentials then { Id = ExtensionId.Password; Payload = ReadOnlyMemory [| 1uy |] }
          { Id = ExtensionId.StreamConfirmation; Payload = ReadOnlyMemory.Empty } ]
        @ (wisp.Motd |> Option.map (fun m -> { Id = ExtensionId.Motd; Payload = ReadOnlyMemory(Text.Encoding.UTF8.GetBytes m) }) |> Option.toList)
    let session =
        { Wisp = wisp
          Template = Session.start settings now
          Handshake = if credentials then AwaitingCredentials elif wisp.Version2 then AwaitingClientInfo else Version1
          Streams = Map.empty
          StreamCount = 0
          Deadlines = Set.empty
          Opened = 0L
          RecentOpens = []
          Queued = 0
          LastActivity = now
          MessageStallsAt = None
          CredentialsBy = if credentials then Some(now.PlusSeconds settings.ConnectTimeoutSeconds) else None
          Ended = false }
    let hello = if wisp.Version2 then [ send (info 2uy 0uy extensions) ] else []
    // With credentials required, the first CONTINUE waits for them (spec: "if the connection is accepted").
    session, hello @ (if credentials then [] else [ send (continueWith 0u (uint32 wisp.BufferPackets)) ])

/// The stream as it now is, in the table, its deadline and queued bytes accounted.
let private put (session: WispSession) (stream: Stream) =
    let old = Map.tryFind stream.Id session.Streams
    let deadlines =
        match old with
        | Some { Due = Some due } -> Set.remove (due.Milliseconds, stream.Id) session.Deadlines
        | _ -> session.Deadlines
    let due = Session.nextDeadline stream.Inner
    let queued = Session.queuedBytes stream.Inner
    let stream = { stream with Due = due; Queued = queued }
    { session with
        Streams = Map.add stream.Id stream session.Streams
        StreamCount = if old.IsSome then session.StreamCount else session.StreamCount + 1
        Deadlines = (match due with Some d -> Set.add (d.Milliseconds, stream.Id) deadlines | None -> deadlines)
        Queued = session.Queued - (old |> Option.map (fun s -> s.Queued) |> Option.defaultValue 0) + queued }

/// The stream gone from the table at `now`; its connection, if still open, closed.
let private drop (session: WispSession) now (stream: Stream) =
    let session =
        { session with
            Streams = Map.remove stream.Id session.Streams
            StreamCount = session.StreamCount - 1
            LastActivity = now
            Deadlines = (match stream.Due with Some d -> Set.remove (d.Milliseconds, stream.Id) session.Deadlines | None -> session.Deadlines)
            Queued = session.Queued - stream.Queued }
    session, liveConnection stream.Inner.Phase |> Option.map (fun c -> CloseConnection c.Generation) |> Option.toList

/// The packets a stream holds for its peer: queued, and the one being written.
let private held (stream: Stream) =
    match stream.Inner.Phase with
    | Busy(Writing _, pending) -> 1 + List.length pending
    | Busy(_, pending) -> List.length pending
    | Idle | Open _ | HalfClosed _ | Ended -> 0

/// The stream with a new grant, and its CONTINUE, if it is due: the client has used the last grant up (so nothing of
/// it is on the way, and the new one is all it may send) and the buffer has room. Waiting for the grant to be used up
/// is what keeps a client that keeps to its credits within `BufferPackets` (the spec: "when it has received the same
/// number of packets"); an earlier CONTINUE would let the packets on the way count twice.
let private regrant (session: WispSession) (stream: Stream) =
    let room = session.Wisp.BufferPackets - held stream
    if stream.Udp || stream.ReceivedSinceGrant < stream.Grant || room <= 0 then stream, []
    else { stream with Grant = room; ReceivedSinceGrant = 0 }, [ send (continueWith stream.Id (uint32 room)) ]

/// Why a stream closes, from the answer its session gave at `now` and what it answered (`cause`: the input; None: the CONNECT itself).
let private reasonFor (session: WispSession) (stream: Stream) now (cause: Input option) (response: Response) =
    match response with
    | Done _ | RecvData _ -> None
    | Forbidden _ -> Some Blocked
    | BadRequest _ -> Some Invalid
    | ClosedByPeer None -> Some Voluntary
    | ConnectFailed _ when now >= stream.Began.PlusSeconds session.Template.Settings.ConnectTimeoutSeconds -> Some TimedOut
    | ConnectFailed _ ->
        match cause with
        | Some(DialFailedWith(_, ConnectionRefused)) -> Some Refused
        | Some(DialFailedWith(_, DialError.Throttled _)) -> Some CloseReason.Throttled
        | Some(SocketFailed _) -> Some NetworkError
        | _ -> Some Unreachable
    | ClosedByPeer(Some _) | IllegalSocketState | Unexpected _ | SshFailed _ | TlsFailed _ -> Some NetworkError

/// Why a stream closes when its session ends itself: its queue overflowed (1008), or it was idle (1000).
let private reasonForEnd status =
    match status with
    | 1008 -> Throttled
    | 1000 -> TransferTimedOut
    | _ -> NetworkError

/// Runs one step of a stream's session at `now` and says it on the wire: its connection's work passes through, its
/// peer's bytes become DATA, its open a CONTINUE (with confirmation), its failure or end a CLOSE (and the stream is gone).
let private advance (session: WispSession) (stream: Stream) now (cause: Input option) (inner: Session, effects: Effect list) =
    let id = stream.Id
    let confirm = match session.Handshake with Version2 true -> true | _ -> false
    let stream = { stream with Inner = inner }
    let mutable closing = None
    let said =
        effects
        |> List.collect (fun effect ->
            match effect with
            | ReplyBinary bytes
            | Reply(RecvData bytes) -> [ send (data id bytes.Span) ]
            // The confirmation tells the client what it still has of its grant (it sets its credits to it).
            | Reply(Done "connect") when confirm && not stream.Udp ->
                [ send (continueWith id (uint32 (max 0 (stream.Grant - stream.ReceivedSinceGrant)))) ]
            | Reply response ->
                if closing.IsNone then closing <- reasonFor session stream now cause response
                []
            | CloseClient(status, _) ->
                if closing.IsNone then closing <- Some(reasonForEnd status)
                []
            | other -> [ other ])
    match closing with
    | Some reason ->
        let session, stillOpen = drop session now stream
        session, said @ stillOpen @ [ send (close id reason) ]
    | None ->
        let stream =
            match cause with
            | Some(ClientBinary _) -> { stream with ReceivedSinceGrant = stream.ReceivedSinceGrant + 1 }
            | _ -> stream
        let stream, grant = regrant session stream
        put session stream, said @ grant

let private stepStream session (stream: Stream) now input =
    advance session stream now (Some input) (Session.step stream.Inner now input)

/// The connection ends: every stream's connection closed, the client closed with `status` and `reason`.
let private endAll (session: WispSession) status reason =
    let closes =
        session.Streams
        |> Seq.choose (fun kv -> liveConnection kv.Value.Inner.Phase)
        |> Seq.map (fun c -> CloseConnection c.Generation)
        |> List.ofSeq
    { session with Ended = true; Streams = Map.empty; StreamCount = 0; Deadlines = Set.empty; Queued = 0 },
    closes @ [ Effect.closeClient status reason ]

let private opensWithinASecond (now: Instant) (session: WispSession) =
    session.RecentOpens |> List.filter (fun at -> now.Since at < 1000L)

/// A CONNECT on stream `id` (not 0): judged like a ws2s `connect` by the stream's own session, or refused here.
let private openStream (session: WispSession) now id kind port host =
    let refuse reason = session, [ send (close id reason) ]
    match Map.tryFind id session.Streams with
    | Some live ->
        // The id is in use: the client has lost track of its streams. Both are refused; the CLOSE names the id.
        let session, stillOpen = drop session now live
        session, stillOpen @ [ send (close id Invalid) ]
    | None when session.StreamCount >= session.Wisp.MaxStreams -> refuse Throttled
    | None when session.Wisp.MaxOpensPerSecond > 0 && List.length (opensWithinASecond now session) >= session.Wisp.MaxOpensPerSecond ->
        refuse Throttled
    // UDP only when the server offers it (its INFO lists the UDP extension); other stream types do not exist.
    | None when port = 0us || not (kind = 1uy || (kind = 2uy && session.Template.Settings.Udp.IsSome)) -> refuse Invalid
    | None ->
        match HostName.parse host, Port.TryCreate(int64 port) with
        | Ok host, ValueSome port ->
            let opened = session.Opened + 1L
            let generation = generationOf opened id
            let inner =
                { Session.start (streamSettings session.Wisp session.Template.Settings) now with
                    NextGeneration = generation
                    ConnectsEnded = session.Template.ConnectsEnded }
            let udp = kind = 2uy
            let stream =
                { Id = id; Udp = udp; Generation = generation; Inner = inner; Began = now; Grant = session.Wisp.BufferPackets
                  ReceivedSinceGrant = 0; Queued = 0; Due = None }
            let recent = if session.Wisp.MaxOpensPerSecond > 0 then now :: opensWithinASecond now session else []
            let session = { session with Opened = opened; RecentOpens = recent }
            let destination = if udp then UdpPeer(host, port) else TcpPeer(host, port)
            let route = { Destination = destination; Binary = true; Ssh = None; Tls = None }
            let session, effects = advance session stream now None (Session.request inner now (Valid(Command.Connect route)))
            session, Observe(StreamOpened(if udp then "udp" else "tcp")) :: effects
        | _ -> refuse Invalid

let private onPacket (session: WispSession) now packet =
    match packet with
    | Info _
    | Continue _ -> session, [] // the handshake is over; credits are the server's to grant
    | Connect(0u, _, _, _)
    | Data(0u, _) -> endAll session 1002 "wisp stream id 0 belongs to the connection, not to a stream"
    | Close(0u, reason) -> endAll session 1000 $"the client closed the wisp connection (reason 0x{reason.Code:x2})"
    | Close(id, _) ->
        match Map.tryFind id session.Streams with
        | Some stream -> drop session now stream
        | None -> session, []
    | Data(id, payload) ->
        match Map.tryFind id session.Streams with
        | Some stream -> stepStream session stream now (ClientBinary payload)
        | None -> session, [] // a stream closed meanwhile (or never opened): its DATA goes nowhere
    | Connect(id, kind, port, host) -> openStream session now id kind port host

/// The connection refuses its client's credentials (or their absence): CLOSE on stream 0 with `reason`, then the WebSocket (1008).
let private refuseCredentials (session: WispSession) (reason: CloseReason) words =
    let session, effects = endAll session 1008 words
    session, send (close 0u reason) :: effects

let private onMessage (session: WispSession) now message =
    match session.Handshake, parse message with
    | AwaitingCredentials, Ok(Info(0u, _, _, extensions)) ->
        let confirm = extensions |> List.exists (fun e -> e.Id = ExtensionId.StreamConfirmation)
        match extensions |> List.tryFind (fun e -> e.Id = ExtensionId.Password) |> Option.bind (fun e -> credentials e.Payload) with
        | Some given -> { session with Handshake = CheckingCredentials confirm }, [ CheckCredentials given ]
        | None -> refuseCredentials session AuthRequired "authentication required: send the access token as the password (Wisp's password extension)"
    | AwaitingCredentials, _ -> refuseCredentials session AuthRequired "authentication required before anything else: an INFO with the password extension"
    | CheckingCredentials _, _ -> endAll session 1008 "a packet before authentication finished: wait for the server's CONTINUE"
    | _ ->
    match parse message with
    | Error { Stream = Some id; IsConnect = true } when id <> 0u ->
        match Map.tryFind id session.Streams with
        | Some live ->
            let session, stillOpen = drop session now live
            session, stillOpen @ [ send (close id Invalid) ]
        | None -> session, [ send (close id Invalid) ]
    | Error malformed -> endAll session 1002 malformed.Reason
    | Ok packet ->
        match session.Handshake, packet with
        | AwaitingClientInfo, Info(0u, _, _, extensions) ->
            let confirm = extensions |> List.exists (fun e -> e.Id = ExtensionId.StreamConfirmation)
            { session with Handshake = Version2 confirm }, []
        | AwaitingClientInfo, _ -> onPacket { session with Handshake = Version1 } now packet
        | _ -> onPacket session now packet

/// When the connection must be woken (`Wake`) if nothing else happens first: the earliest stream deadline,
/// a stalled client message, and (with no streams) the idle timeout. None: never (it has ended).
let nextDeadline (session: WispSession) : Instant option =
    let settings = session.Template.Settings
    let candidates =
        [ if not session.Deadlines.IsEmpty then Some { Milliseconds = fst session.Deadlines.MinimumElement } else None
          session.MessageStallsAt
          session.CredentialsBy
          if settings.IdleTimeoutSeconds > 0 && session.Streams.IsEmpty then Some(session.LastActivity.PlusSeconds settings.IdleTimeoutSeconds) else None ]
        |> List.choose id
    if session.Ended || candidates.IsEmpty then None else Some(List.min candidates)

/// Acts on what is due by `now`: the connection's own deadlines, then each stream whose deadline has come (once each).
let private expire (session: WispSession) (now: Instant) =
    let settings = session.Template.Settings
    match session.MessageStallsAt, session.CredentialsBy with
    | _, Some by when by <= now ->
        refuseCredentials session AuthRequired $"authentication required: no credentials within {settings.ConnectTimeoutSeconds} s"
    | Some at, _ when at <= now -> endAll session 1008 $"message stalled: no bytes of it for {settings.MessageTimeoutSeconds} s"
    | _ when settings.IdleTimeoutSeconds > 0 && session.Streams.IsEmpty && session.LastActivity.PlusSeconds settings.IdleTimeoutSeconds <= now ->
        endAll session 1000 $"idle timeout: no traffic for {settings.IdleTimeoutSeconds} s"
    | _ ->
        let due = session.Deadlines |> Seq.takeWhile (fun (at, _) -> at <= now.Milliseconds) |> Seq.map snd |> List.ofSeq
        due
        |> List.fold
            (fun (session, effects) id ->
                match Map.tryFind id session.Streams with
                | Some stream ->
                    let session, more = stepStream session stream now Wake
                    session, effects @ more
                | None -> session, effects)
            (session, [])

let private active now (session: WispSession) = if session.LastActivity = now then session else { session with LastActivity = now }

let private handle (session: WispSession) (now: Instant) (input: Input) =
    match input with
    | Wake -> session, []
    | ClientGone -> endAll session 1000 ""
    | ServerStopping -> endAll session 1001 "server shutting down"
    | ClientMessageTooLarge limit -> endAll session 1009 $"message exceeds {limit} bytes"
    | ClientMessageProgress when session.Template.Settings.MessageTimeoutSeconds > 0 ->
        { session with MessageStallsAt = Some(now.PlusSeconds session.Template.Settings.MessageTimeoutSeconds) }, []
    | ClientMessageProgress -> session, []
    | RunnerFault _ -> endAll session 1011 "unexpected server error"
    | ClientText _ -> endAll session 1003 "wisp carries binary messages only"
    | ClientBinary message -> onMessage (active now session) now message
    | CredentialsAccepted scope ->
        match session.Handshake, scope |> Option.map (List.map Policy.parseRule) with
        | CheckingCredentials confirm, Some rules when rules |> List.exists (fun r -> r.IsError) ->
            refuseCredentials session BadPassword "authentication failed: the token's allow rules do not parse"
        | CheckingCredentials confirm, rules ->
            let template =
                match rules with
                | Some parsed -> { session.Template with Settings = narrowTo (parsed |> List.map Result.toOption |> List.choose id) session.Template.Settings }
                | None -> session.Template
            { session with Handshake = Version2 confirm; Template = template; CredentialsBy = None },
            [ send (continueWith 0u (uint32 session.Wisp.BufferPackets)) ]
        | _ -> session, []
    | CredentialsRefused reason ->
        match session.Handshake with
        | CheckingCredentials _ -> refuseCredentials session BadPassword $"authentication failed: {reason}"
        | _ -> session, []
    | Resolved(g, _) | ResolveFailed g | Dialled g | Secured(g, _) | SecureFailed(g, _) | DialFailedWith(g, _)
    | Received(g, _) | PeerFinished g | SocketFailed(g, _) | WriteCompleted g ->
        match Map.tryFind (streamOf g) session.Streams with
        | Some stream when stream.Generation = g ->
            let session = if input.IsReceived then active now session else session
            stepStream session stream now input
        | _ -> session, [] // a stream that is gone (or an id reused since): stale

/// The transition function, as `Session.step`: `input` at `now`, after everything due by `now`. Total: every input
/// has a defined outcome in every state; events of a stream that is gone are stale and produce nothing.
let step (session: WispSession) (now: Instant) (input: Input) =
    if session.Ended then session, []
    else
        let session =
            match input, session.MessageStallsAt with
            | (ClientText _ | ClientBinary _ | ClientMessageTooLarge _), Some _ -> { session with MessageStallsAt = None }
            | _ -> session
        let session, expired = expire session now
        if session.Ended then session, expired
        else
            let session, effects = handle session now input
            session, expired @ effects

/// May the driver read another client message? Always, until the end: each stream's queue is bounded by its credits,
/// so one slow peer never holds up the others (the driver still pauses reading while the server-wide budget is full).
let acceptsFrame (session: WispSession) = not session.Ended

let queuedBytes (session: WispSession) = session.Queued

let isEnded (session: WispSession) = session.Ended

/// The server's settings changed: new streams and the open ones' later connects follow them (see `Session.reconfigure`).
let reconfigure (server: Settings) (session: WispSession) =
    if session.Ended then session
    else
        let template = Session.reconfigure server session.Template
        let streams = session.Streams |> Map.map (fun _ s -> { s with Inner = Session.reconfigure (streamSettings session.Wisp server) s.Inner })
        let session = { session with Template = template; Streams = Map.empty; StreamCount = 0; Deadlines = Set.empty; Queued = 0 }
        streams |> Map.fold (fun session _ stream -> put session stream) session

/// The token expired at `expiredAt`: new streams are refused (0x48); open ones go on.
let endConnects (expiredAt: DateTimeOffset) (session: WispSession) =
    { session with Template = Session.endConnects expiredAt session.Template }
