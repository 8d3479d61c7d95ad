/// The websockify protocol (noVNC and friends): binary frames relayed to one fixed target, no JSON.
/// It is the ws2s session, started with a binary-mode `connect` to the target, whose answers become
/// closes of the client connection: the same ordering, backpressure, policy and limits, one place for each.
module Ws2s.Protocol.WebsockifySession

open Ws2s.Protocol.Session

type WebsockifySession = { Inner: Session }

/// How a ws2s answer or event ends a websockify session, if it does.
let private closeFor (response: Response) =
    match response with
    | Done _
    | RecvData _
    | IllegalSocketState
    | BadRequest _
    | ConnectedResumable // (a websockify connect is never resumable)
    | AckDone _
    | ResumeDone _
    | ResumeFailed _ -> None
    | ConnectFailed reason -> Some(1011, "cannot reach the target: " + reason)
    | Forbidden(_, rule) -> Some(1008, $"the target is refused by policy ({rule})")
    | ClosedByPeer None -> Some(1000, "the target closed the connection")
    | ClosedByPeer(Some reason) -> Some(1011, "the target connection failed: " + reason)
    | SshFailed reason -> Some(1011, reason)
    | TlsFailed reason -> Some(1011, "tls failed: " + reason)
    | Unexpected reason -> Some(1011, reason)

/// Answers are not sent on this endpoint; the first that ends the relay closes the client connection.
let private translate (session: Session) (effects: Effect list) =
    let close = effects |> List.tryPick (function Reply r -> closeFor r | _ -> None)
    let kept = effects |> List.filter (function Reply _ -> false | _ -> true)
    match close with
    | None -> { Inner = session }, kept
    | Some(status, reason) ->
        let stillOpen = liveConnection session.Phase |> Option.map (fun l -> CloseConnection l.Generation) |> Option.toList
        { Inner = { session with Phase = Ended } }, kept @ stillOpen @ [ Effect.closeClient status reason ]

/// A websockify session relaying to `destination` (in binary mode), begun at `now`, and the effects that start the connection.
let start (settings: Settings) (now: Instant) (destination: Destination) =
    let connect = Valid(Connect { Destination = destination; Binary = true; Ssh = None; Tls = None; Resumable = false })
    let session, effects = request (Session.start settings now) now connect
    translate session effects

/// When the session must be woken if nothing else happens first (see `Session.nextDeadline`).
let nextDeadline (websockify: WebsockifySession) = Session.nextDeadline websockify.Inner

let step (websockify: WebsockifySession) (now: Instant) (input: Input) =
    match input, websockify.Inner.Phase with
    | _, Ended -> websockify, []
    | ClientText _, phase ->
        let stillOpen = liveConnection phase |> Option.map (fun l -> CloseConnection l.Generation) |> Option.toList
        { Inner = { websockify.Inner with Phase = Ended } }, stillOpen @ [ CloseClient(1003, "this endpoint carries binary frames only") ]
    | RunnerFault _, phase ->
        let stillOpen = liveConnection phase |> Option.map (fun l -> CloseConnection l.Generation) |> Option.toList
        { Inner = { websockify.Inner with Phase = Ended } }, stillOpen @ [ CloseClient(1011, "unexpected server error") ]
    | _ ->
        let session, effects = Session.step websockify.Inner now input
        translate session effects

let acceptsFrame (websockify: WebsockifySession) = acceptsRequest websockify.Inner

let reconfigure (server: Settings) (websockify: WebsockifySession) = { Inner = Session.reconfigure server websockify.Inner }

let queuedBytes (websockify: WebsockifySession) = queuedBytes websockify.Inner

let isEnded (websockify: WebsockifySession) = websockify.Inner.Phase.IsEnded
