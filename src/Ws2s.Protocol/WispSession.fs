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
open Ws2s.Protocol.WispStreams

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
          StreamSettings = streamSettings wisp settings
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
    // Credentials can only come in a v2 INFO: a v1 connection that needs them is a driver's mistake, closed, never served.
    if wisp.Credentials && not wisp.Version2 then endAll session 1008 "authentication required: a token (this connection cannot present one later)"
    else
    let hello = if wisp.Version2 then [ send (info 2uy 0uy extensions) ] else []
    // With credentials required, the first CONTINUE waits for them (spec: "if the connection is accepted").
    session, hello @ (if credentials then [] else [ send (continueWith 0u (uint32 wisp.BufferPackets)) ])
/// A CONNECT on stream `id` (not 0): judged like a ws2s `connect` by the stream's own session, or refused here.
let private openStream (session: WispSession) now id kind port host =
    let refuse reason = session, [ send (close id reason) ]
    match Map.tryFind id session.Streams with
    | Some live ->
        // The id is in use: the client has lost track of its streams. Both are refused; the CLOSE names the id.
        let session, stillOpen = drop session now live
        session, stillOpen @ [ send (close id Invalid) ]
    | None when session.StreamCount >= session.Wisp.MaxStreams -> refuse Throttled
    | None when overRate session.Wisp.MaxOpensPerSecond now session.RecentOpens -> refuse Throttled
    // UDP only when the server offers it (its INFO lists the UDP extension); other stream types do not exist.
    | None when port = 0us || not (kind = 1uy || (kind = 2uy && session.Template.Settings.Udp.IsSome)) -> refuse Invalid
    | None ->
        match HostName.parse host, Port.TryCreate(int64 port) with
        | Ok host, ValueSome port ->
            let opened = session.Opened + 1L
            let generation = generationOf opened id
            let inner =
                { Session.start session.StreamSettings now with
                    NextGeneration = generation
                    ConnectsEnded = session.Template.ConnectsEnded }
            let udp = kind = 2uy
            let stream =
                { Id = id; Udp = udp; Generation = generation; Inner = inner; Began = now; Grant = session.Wisp.BufferPackets
                  ReceivedSinceGrant = 0; Queued = 0; Due = None }
            let session = { session with Opened = opened; RecentOpens = recordRate session.Wisp.MaxOpensPerSecond now session.RecentOpens }
            let destination = if udp then UdpPeer(host, port) else TcpPeer(host, port)
            let route = { Destination = destination; Binary = true; Ssh = None; Tls = None; Resumable = false }
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
        let what = match session.Handshake with CheckingCredentials _ -> "could not be checked" | _ -> "did not come"
        refuseCredentials session AuthRequired $"authentication required: the credentials {what} within {settings.ConnectTimeoutSeconds} s"
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
    | ClientGone | ClientLost -> endAll session 1000 "" // a Wisp session ends with its WebSocket
    | ResumeAsked _ | ResumeRefused _ | ResumedElsewhere -> session, [] // (Wisp sessions are not resumable)
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
            { session with
                Handshake = Version2 confirm
                Template = template
                StreamSettings = streamSettings session.Wisp template.Settings
                CredentialsBy = None },
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
        let session =
            { session with
                Template = template
                StreamSettings = streamSettings session.Wisp template.Settings
                Streams = Map.empty
                StreamCount = 0
                Deadlines = Set.empty
                Queued = 0 }
        streams |> Map.fold (fun session _ stream -> put session stream) session

/// The token expired at `expiredAt`: new streams are refused (0x48); open ones go on.
let endConnects (expiredAt: DateTimeOffset) (session: WispSession) =
    { session with Template = Session.endConnects expiredAt session.Template }
