/// Wisp's connection state and its streams (see WispSession.fs for the transitions): what a connection holds, and how
/// one stream's ws2s session is stepped and said on the wire — its answers as CLOSE reasons, its peer's bytes as DATA,
/// its credits as CONTINUE — and how streams enter and leave the table (their deadlines and queued bytes accounted).
module Ws2s.Protocol.WispStreams

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
      /// The settings every stream's session runs under (`streamSettings` of the template's), shared by all of them.
      StreamSettings: Settings
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
let internal streamSettings (wisp: WispSettings) (settings: Settings) =
    { settings with MaxPending = 2 * wisp.BufferPackets; MaxPendingBytes = Int32.MaxValue; MaxConnectsPerSecond = 0; MessageTimeoutSeconds = 0 }

let internal generationOf (opened: int64) (id: uint32) : Generation = (opened <<< 32) ||| int64 id

let internal streamOf (generation: Generation) = uint32 (generation &&& 0xFFFFFFFFL)

let internal send packet = ReplyBinary packet

/// The stream as it now is, in the table, its deadline and queued bytes accounted.
let internal put (session: WispSession) (stream: Stream) =
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
let internal drop (session: WispSession) now (stream: Stream) =
    let session =
        { session with
            Streams = Map.remove stream.Id session.Streams
            StreamCount = session.StreamCount - 1
            LastActivity = now
            Deadlines = (match stream.Due with Some d -> Set.remove (d.Milliseconds, stream.Id) session.Deadlines | None -> session.Deadlines)
            Queued = session.Queued - stream.Queued }
    session, liveConnection stream.Inner.Phase |> Option.map (fun c -> CloseConnection c.Generation) |> Option.toList

/// The packets a stream holds for its peer: queued, and the one being written.
let internal held (stream: Stream) =
    match stream.Inner.Phase with
    | Busy(Writing _, pending) -> 1 + List.length pending
    | Busy(_, pending) -> List.length pending
    | Idle | Open _ | HalfClosed _ | Ended -> 0

/// The stream with a new grant, and its CONTINUE, if it is due: the client has used the last grant up (so nothing of
/// it is on the way, and the new one is all it may send) and the buffer has room. Waiting for the grant to be used up
/// is what keeps a client that keeps to its credits within `BufferPackets` (the spec: "when it has received the same
/// number of packets"); an earlier CONTINUE would let the packets on the way count twice.
let internal regrant (session: WispSession) (stream: Stream) =
    let room = session.Wisp.BufferPackets - held stream
    if stream.Udp || stream.ReceivedSinceGrant < stream.Grant || room <= 0 then stream, []
    else { stream with Grant = room; ReceivedSinceGrant = 0 }, [ send (continueWith stream.Id (uint32 room)) ]

/// Why a stream closes, from the answer its session gave at `now` and what it answered (`cause`: the input; None: the CONNECT itself).
let internal reasonFor (session: WispSession) (stream: Stream) now (cause: Input option) (response: Response) =
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
    | ConnectedResumable | AckDone _ | ResumeDone _ | ResumeFailed _ -> None // (a stream's connect is never resumable)

/// Why a stream closes when its session ends itself: its queue overflowed (1008), or it was idle (1000).
let internal reasonForEnd status =
    match status with
    | 1008 -> Throttled
    | 1000 -> TransferTimedOut
    | _ -> NetworkError

/// Runs one step of a stream's session at `now` and says it on the wire: its connection's work passes through, its
/// peer's bytes become DATA, its open a CONTINUE (with confirmation), its failure or end a CLOSE (and the stream is gone).
let internal advance (session: WispSession) (stream: Stream) now (cause: Input option) (inner: Session, effects: Effect list) =
    let id = stream.Id
    let confirm = match session.Handshake with Version2 true -> true | _ -> false
    let stream = { stream with Inner = inner }
    let mutable closing = None
    let said =
        effects
        |> List.collect (fun effect ->
            match effect with
            | ReplyBinary bytes
            | Reply(RecvData bytes) -> [ ReplyWispData(id, bytes) ]
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

let internal stepStream session (stream: Stream) now input =
    advance session stream now (Some input) (Session.step stream.Inner now input)

/// The connection ends: every stream's connection closed, the client closed with `status` and `reason`.
let internal endAll (session: WispSession) status reason =
    let closes =
        session.Streams
        |> Seq.choose (fun kv -> liveConnection kv.Value.Inner.Phase)
        |> Seq.map (fun c -> CloseConnection c.Generation)
        |> List.ofSeq
    { session with Ended = true; Streams = Map.empty; StreamCount = 0; Deadlines = Set.empty; Queued = 0 },
    closes @ [ Effect.closeClient status reason ]
