/// A deterministic simulation: a second driver of the pure core, with simulated peers, DNS and a
/// simulated clock (time stands still while events happen, and jumps to the core's next deadline only
/// when nothing else can happen while it waits for something), and a seeded scheduler that delivers events in random (but per-socket ordered) order,
/// chunks the peers' bytes at random, resets connections and lets late events of closed sockets
/// through. Everything the core does is recorded so that properties can check the invariants.
module Ws2s.Protocol.Tests.Simulation

open System
open System.Collections.Generic
open System.Net
open Ws2s.Protocol

/// The certificate the simulated TLS peers present: for 127.0.0.1, pinned nowhere.
let simulatedCertificate = { Names = [ "127.0.0.1" ]; Hashes = [ "c2ltdWxhdGVk" ] }

type Peer =
    /// Accepts and echoes every byte back.
    | Echo
    /// Accepts, sends these bytes, then closes.
    | Greeter of byte[]
    /// Nothing listens: connect is refused.
    | Refusing
    /// Never answers: only the connect timer ends the attempt.
    | Silent

type World =
    { Peers: Map<int, Peer>
      /// What the simulated DNS answers; names not here are not found.
      Names: Map<string, IPAddress list> }

/// What the client saw, in order.
type Output =
    | Text of Response
    | Binary of byte[]
    | ClientClosed of status: int

type Chaos =
    { /// Chance, per scheduling step, that an open connection is reset.
      ResetChance: float
      /// Chance that an event of a closed connection is still delivered (it raced the close).
      LateEventChance: float
      /// Largest chunk a peer's bytes are split into.
      MaxChunk: int }

let calm = { ResetChance = 0.0; LateEventChance = 0.0; MaxChunk = 1 <<< 16 }

/// One call of `step`, as recorded.
type Transition =
    { Before: Session.Session
      /// When it happened (the simulated clock).
      At: Instant
      Input: Input
      After: Session.Session
      Effects: Effect list }

type private Stream =
    | Socket of Generation
    | Acks of Generation
    /// The driver's answers to `HandOver` (the registry of resumable sessions).
    | Registry

type Simulator(settings: Session.Settings, world: World, seed: int, chaos: Chaos) =
    let rng = Random seed
    let mutable now = Instant.Zero
    let mutable session = Session.start settings now
    let streams = Dictionary<Stream, Queue<Input>>()
    let clientFrames = Queue<Input>()
    let peers = Dictionary<Generation, Peer>()
    let closed = HashSet<Generation>()
    let outputs = ResizeArray<Output>()
    let transitions = ResizeArray<Transition>()
    /// Bytes the core had written to each connection, and bytes of each connection relayed to the client.
    let written = Dictionary<Generation, ResizeArray<byte>>()
    let relayed = Dictionary<Generation, ResizeArray<byte>>()

    let bytesOf (table: Dictionary<Generation, ResizeArray<byte>>) g =
        match table.TryGetValue g with
        | true, b -> b
        | _ ->
            let b = ResizeArray()
            table[g] <- b
            b

    let enqueue stream input =
        match streams.TryGetValue stream with
        | true, q -> q.Enqueue input
        | _ ->
            let q = Queue()
            q.Enqueue input
            streams[stream] <- q

    let receive g (bytes: byte[]) =
        let mutable offset = 0
        while offset < bytes.Length do
            let size = rng.Next(1, min chaos.MaxChunk (bytes.Length - offset) + 1)
            enqueue (Socket g) (Received(g, ReadOnlyMemory(bytes, offset, size)))
            offset <- offset + size

    let streamsOf g = [ Socket g; Acks g ]

    /// The driver disposes a closed connection: its queued events vanish, except a late one now and then.
    let close g =
        if closed.Add g then
            for stream in streamsOf g do
                match streams.TryGetValue stream with
                | true, q when q.Count > 0 ->
                    let late = q.Peek()
                    q.Clear()
                    if rng.NextDouble() < chaos.LateEventChance then q.Enqueue late
                | _ -> ()

    let dial g port =
        match world.Peers.TryFind port with
        | Some Echo ->
            peers[g] <- Echo
            enqueue (Socket g) (Dialled g)
        | Some(Greeter words) ->
            peers[g] <- Greeter words
            enqueue (Socket g) (Dialled g)
            receive g words
            enqueue (Socket g) (PeerFinished g)
        | Some Silent -> ()
        | Some Refusing
        | None -> enqueue (Socket g) (DialFailedWith(g, ConnectionRefused))

    let execute currentInput effect =
        match effect with
        | Resolve(g, host) ->
            match world.Names.TryFind(host.ToLowerInvariant()) with
            | Some addresses -> enqueue (Socket g) (Resolved(g, addresses))
            | None -> enqueue (Socket g) (ResolveFailed g)
        | Dial(g, TcpHop endpoint) -> dial g endpoint.Port
        | Dial(g, SshHop(server, _, _, port)) ->
            // A simulated SSH server forwards to the target port; nothing listening there refuses.
            match world.Peers.TryFind server.Port with
            | Some Refusing | Some Silent | None -> enqueue (Socket g) (DialFailedWith(g, ConnectionRefused))
            | Some _ -> dial g port.Value
        | Dial(g, (UdpHop _ | UnixHop _ | NamedHop _)) -> enqueue (Socket g) (DialFailedWith(g, ConnectionRefused))
        | Write(g, bytes) ->
            (bytesOf written g).AddRange(bytes.ToArray())
            enqueue (Acks g) (WriteCompleted g)
            match peers.TryGetValue g with
            | true, Echo when not (closed.Contains g) -> receive g (bytes.ToArray())
            | _ -> ()
        | CloseConnection g -> close g
        | ShutdownConnection g ->
            // An echo peer finishes too once it has echoed everything (as a real one does on FIN).
            match peers.TryGetValue g with
            | true, Echo -> enqueue (Socket g) (PeerFinished g)
            | _ -> ()
        | SecureConnection(g, serverName) ->
            // The simulated peers' certificate is for 127.0.0.1: asked for as `localhost`, the name does not match.
            if serverName = "localhost" then enqueue (Socket g) (SecureFailed(g, "certificate name does not match localhost"))
            else enqueue (Socket g) (Secured(g, simulatedCertificate))
        | Reply response ->
            let copy =
                match response with
                | RecvData bytes -> RecvData(ReadOnlyMemory(bytes.ToArray()))
                | other -> other
            outputs.Add(Text copy)
            match response, currentInput with
            | RecvData bytes, Received(g, _) -> (bytesOf relayed g).AddRange(bytes.ToArray())
            | _ -> ()
        | ReplyBinary bytes ->
            outputs.Add(Binary(bytes.ToArray()))
            match currentInput with
            | Received(g, _) -> (bytesOf relayed g).AddRange(bytes.ToArray())
            | _ -> ()
        | CloseClient(status, _) -> outputs.Add(ClientClosed status)
        | Observe _ -> () // for the driver's metrics; checked by a property over the transitions
        | CheckCredentials _ -> () // a ws2s session never asks (Wisp does: see WispSessionTests)
        // One session alone: no other holds any token (resumes between sessions are ResumeTests').
        | HandOver _ -> enqueue Registry (ResumeRefused "no session holds this token")
        | TakeClient | RefuseResume _ -> ()
        | ReplyWispData _ -> failwith "a ws2s session never sends Wisp DATA (its Wisp connection does: see WispSessionTests)"

    let deliver input =
        let before = session
        let after, effects = Session.step session now input
        session <- after
        transitions.Add { Before = before; At = now; Input = input; After = after; Effects = effects }
        for effect in effects do
            execute input effect

    /// A reset: the connection's unread bytes are gone, and the driver reports the failure.
    let maybeReset () =
        if chaos.ResetChance > 0.0 && rng.NextDouble() < chaos.ResetChance then
            match session.Phase with
            | Session.Open connection
            | Session.Busy(Session.Writing(connection, _, _), _) when peers.ContainsKey connection.Generation ->
                let g = connection.Generation
                let q = match streams.TryGetValue(Socket g) with | true, q -> q | _ -> Queue()
                q.Clear()
                q.Enqueue(SocketFailed(g, "connection reset"))
                streams[Socket g] <- q
                peers.Remove g |> ignore
            | _ -> ()

    member _.Session = session
    /// The simulated clock.
    member _.Now = now
    member _.Outputs = outputs
    member _.Transitions = transitions
    member _.Written g = (bytesOf written g).ToArray()
    member _.Relayed g = (bytesOf relayed g).ToArray()
    member _.Generations = List.ofSeq written.Keys

    /// Queue a client frame; it is delivered when the core accepts requests, like the real host does.
    member _.Send(frame: Input) = clientFrames.Enqueue frame

    /// Deliver one event chosen at random; when none can happen while the core waits for something (a
    /// connect, a handshake), move the clock to its next deadline and wake it. False when quiet.
    member _.RunOne() =
        maybeReset ()
        let ready = [ for q in streams.Values do if q.Count > 0 then yield q ]
        let clientReady = clientFrames.Count > 0 && Session.acceptsRequest session
        let choices = (if clientReady then [ clientFrames ] else []) @ ready
        match choices, session.Phase, Session.nextDeadline session with
        | [], Session.Busy _, Some due ->
            now <- max now due
            deliver Wake
            true
        | [], _, _ -> false
        | _ ->
            deliver (choices[rng.Next choices.Length].Dequeue())
            true

    /// Move the simulated clock on by `milliseconds` and wake the core (as the runner's timer would, late or not).
    member _.Advance(milliseconds: int64) =
        now <- now.PlusMilliseconds milliseconds
        deliver Wake

    /// Run until nothing more can happen (bounded, to catch a core that loops forever).
    member this.RunUntilQuiet() =
        let mutable steps = 0
        while this.RunOne() do
            steps <- steps + 1
            if steps > 1_000_000 then failwith "simulation did not settle"

    /// Feed an input straight to the core, bypassing the scheduler (for stale-event checks).
    member _.Inject(input: Input) = deliver input

/// Responses that answer a request (everything but `recv data` and the code-5 event).
let isAnswer (response: Response) =
    match response with
    | RecvData _ | ClosedByPeer _ -> false
    | _ -> true

let answers (outputs: Output seq) =
    [ for o in outputs do
          match o with
          | Text r when isAnswer r -> yield r
          | _ -> () ]

/// The world the vectors and most properties run in: peers on fixed ports, `localhost` only in DNS.
let ports = Map [ "ECHO", 7001; "GREETER", 7002; "REFUSED", 7003; "SILENT", 7004 ]

let standardWorld =
    { Peers = Map [ 7001, Echo; 7002, Greeter Vectors.greeting; 7003, Refusing; 7004, Silent ]
      Names = Map.empty }
