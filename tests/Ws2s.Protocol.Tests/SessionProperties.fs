module Ws2s.Protocol.Tests.SessionProperties

open System
open System.Net
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Ws2s.Protocol
open Ws2s.Protocol.Tests.Generators
open Ws2s.Protocol.Tests.Simulation

/// Any input at all, with generations that may or may not be live.
let genInput =
    let generation = Gen.choose (0, 4) |> Gen.map int64
    let addresses = Gen.listOf (Gen.elements [ IPAddress.Loopback; IPAddress.IPv6Loopback; IPAddress.Parse "93.184.216.34" ])
    Gen.oneof
        [ genScript genDestination |> Gen.map (List.truncate 1) |> Gen.filter (not << List.isEmpty) |> Gen.map List.head
          Gen.constant ClientGone
          Gen.constant ClientLost
          Gen.choose (0, 100) |> Gen.map (int64 >> ResumeAsked)
          Gen.constant (ResumeRefused "no session holds this token")
          Gen.constant ResumedElsewhere
          Gen.constant (ClientMessageTooLarge 1024)
          Gen.constant ClientMessageProgress
          Gen.constant ServerStopping
          Gen.constant (RunnerFault "a bug")
          Gen.map2 (fun g a -> Resolved(g, a)) generation addresses
          Gen.map ResolveFailed generation
          Gen.map Dialled generation
          Gen.map (fun g -> Secured(g, simulatedCertificate)) generation
          Gen.map (fun g -> SecureFailed(g, "certificate not trusted")) generation
          Gen.map2 (fun g e -> DialFailedWith(g, e)) generation (Gen.elements [ ConnectionRefused; NetworkUnreachable; DialFailed "x" ])
          Gen.map2 (fun g b -> Received(g, ReadOnlyMemory b)) generation genBytes
          Gen.map PeerFinished generation
          Gen.map (fun g -> SocketFailed(g, "connection reset")) generation
          Gen.map WriteCompleted generation
          Gen.constant Wake ]

[<Property(MaxTest = 500)>]
let ``the core is total: any input sequence in any state gives a session, never an exception`` () =
    Prop.forAll (Arb.fromGen (Gen.listOf genInput)) (fun inputs ->
        // Time moves on by 0-20 s between inputs: deadlines come due anywhere in the sequence.
        let final =
            inputs
            |> List.fold (fun (s, now: Instant) i -> fst (Session.step s now i), now.PlusMilliseconds(int64 (hash i &&& 0x3FFF))) (Session.start standardSettings t0, t0)
            |> fst
        not (isNull (box final)))

/// Does this answer fit this request?
let answersRequest (request: RequestSpec) (answer: Response) =
    match request, answer with
    | _, Done name -> name = request.Name
    | ConnectTo _, (ConnectFailed _ | Forbidden _) -> true
    | ConnectTls _, (ConnectFailed _ | Forbidden _ | TlsFailed _) -> true
    | StartTlsIt, (IllegalSocketState | TlsFailed _ | BadRequest _ | ConnectFailed _) -> true // code 2: its handshake timed out
    | (SendText _ | SendBase64 _ | ShutdownIt), IllegalSocketState -> true
    | _ -> false

let run seed chaos (requests: RequestSpec list) =
    let sim = Simulator(standardSettings, standardWorld, seed, chaos)
    for r in requests do
        sim.Send(ClientText(ReadOnlyMemory r.Frame))
    sim.RunUntilQuiet()
    sim

[<Property(MaxTest = 300)>]
let ``responses come in request order, one answer per request`` (seed: int) =
    Prop.forAll (Arb.fromGen (genRequests genDestination)) (fun requests ->
        let sim = run seed { calm with ResetChance = 0.02; MaxChunk = 7 } requests
        let answers = answers sim.Outputs
        List.length answers = List.length requests && List.forall2 answersRequest requests answers)

[<Property(MaxTest = 300)>]
let ``no write effect unless the connection was dialled and is open`` (seed: int) =
    Prop.forAll (Arb.fromGen (genScript genDestination)) (fun script ->
        let sim = Simulator(standardSettings, standardWorld, seed, { calm with ResetChance = 0.05; LateEventChance = 0.5 })
        for frame in script do
            sim.Send frame
        sim.RunUntilQuiet()
        let dialled = Collections.Generic.HashSet<Generation>()
        let closed = Collections.Generic.HashSet<Generation>()
        sim.Transitions
        |> Seq.forall (fun t ->
            t.Effects
            |> List.forall (fun e ->
                match e, t.Input with
                | Reply(Done "connect"), (Dialled g | Secured(g, _)) -> dialled.Add g |> ignore; true
                | CloseConnection g, _ -> closed.Add g |> ignore; true
                | Write(g, _), _ -> dialled.Contains g && not (closed.Contains g)
                | _ -> true)))

[<Property(MaxTest = 200)>]
let ``pipelined commands answer exactly as the same commands sent one by one after each answer`` (seed: int) =
    // Without shutdown: after it the echo peer closes on its own, a race with the next request that
    // only the environment decides (as with a peer that closes by itself).
    let requests = genRequests genDestination |> Gen.map (List.filter (fun r -> r <> ShutdownIt))
    Prop.forAll (Arb.fromGen requests) (fun requests ->
        let pipelined = run seed calm requests
        let stepwise = Simulator(standardSettings, standardWorld, seed + 1, calm)
        for r in requests do
            stepwise.Send(ClientText(ReadOnlyMemory r.Frame))
            stepwise.RunUntilQuiet()
        let written (sim: Simulator) = sim.Generations |> List.map (fun g -> Convert.ToHexString(sim.Written g))
        answers pipelined.Outputs = answers stepwise.Outputs && written pipelined = written stepwise)

[<Property(MaxTest = 300)>]
let ``every answer to a connect is observed once, with its code, right after it`` (seed: int) =
    Prop.forAll (Arb.fromGen (genScript genDestination)) (fun script ->
        let sim = Simulator(standardSettings, standardWorld, seed, { calm with ResetChance = 0.05; LateEventChance = 0.5 })
        for frame in script do
            sim.Send frame
        sim.RunUntilQuiet()
        let isConnectAnswer response =
            match response with
            | Done "connect" | ConnectFailed _ | Forbidden _ | SshFailed _ -> true
            | _ -> false
        sim.Transitions
        |> Seq.forall (fun t ->
            let rec check effects =
                match effects with
                | Reply r :: Observe(ConnectAnswered(_, code)) :: rest when isConnectAnswer r -> code = r.Code && check rest
                // Code 8 answers a `tls` connect (observed) or a `starttls` (not a connect).
                | Reply(TlsFailed _) :: Observe(ConnectAnswered(_, code)) :: rest -> code = 8 && check rest
                | Reply r :: _ when isConnectAnswer r -> false
                | Observe _ :: _ -> false
                | _ :: rest -> check rest
                | [] -> true
            check t.Effects))

[<Property(MaxTest = 300)>]
let ``events of a stale generation change nothing and produce no effects`` (seed: int) =
    let staleEvents g =
        [ Resolved(g, [ IPAddress.Loopback ]); ResolveFailed g; Dialled g; DialFailedWith(g, ConnectionRefused)
          Received(g, ReadOnlyMemory "late"B); PeerFinished g; SocketFailed(g, "reset"); WriteCompleted g
          Secured(g, simulatedCertificate); SecureFailed(g, "late") ]
    Prop.forAll (Arb.fromGen (genRequests genDestination)) (fun requests ->
        let sim = run seed calm requests
        let live = Session.liveConnection sim.Session.Phase |> Option.map _.Generation
        [ 0L .. sim.Session.NextGeneration + 1L ]
        |> List.filter (fun g -> Some g <> live)
        |> List.collect staleEvents
        |> List.forall (fun input ->
            let next, effects = Session.step sim.Session sim.Now input
            effects.IsEmpty && next = sim.Session))

[<Property(MaxTest = 300)>]
let ``connect done comes before any recv data of that connection`` (seed: int) =
    Prop.forAll (Arb.fromGen (genRequests genDestination)) (fun requests ->
        let sim = run seed { calm with MaxChunk = 3 } requests
        let connected = Collections.Generic.HashSet<Generation>()
        sim.Transitions
        |> Seq.forall (fun t ->
            match t.Input with
            | Dialled g | Secured(g, _) when t.Effects |> List.contains (Reply(Done "connect")) ->
                connected.Add g |> ignore
                true
            | Received(g, _) -> t.Effects.IsEmpty || connected.Contains g
            | _ -> true))

let private tickSettings = { standardSettings with IdleTimeoutSeconds = 5; MaxConnectsPerSecond = 3 }

[<Property>]
let ``a session with no frame for the idle timeout closes with 1000, and any frame restarts the count`` (gaps: int list) =
    // Pings separated by gaps of 0-8 s, the session also woken half-way through each gap (as a driver's timer
    // may wake it early): only a gap that reaches the timeout (5 s) ends the session.
    let gaps = gaps |> List.map (fun n -> int64 (abs (n % 8000)))
    let ping = ClientText(ReadOnlyMemory((PingIt).Frame))
    let closesOf effects = effects |> List.choose (function CloseClient(status, _) -> Some status | _ -> None)
    let wait (s: Session.Session, now: Instant, closes) gap =
        let s, early = Session.step s (now.PlusMilliseconds(gap / 2L)) Wake
        let next = now.PlusMilliseconds gap
        let s, effects = Session.step s next ping
        s, next, closes @ closesOf (early @ effects)
    let first, _ = Session.step (Session.start tickSettings t0) t0 ping
    let final, _, closes = gaps |> List.fold wait (first, t0, [])
    let expectedToEnd = gaps |> List.exists (fun gap -> gap >= 5000L)
    final.Phase.IsEnded = expectedToEnd && closes = (if expectedToEnd then [ 1000 ] else [])

[<Xunit.Fact>]
let ``the idle timeout is the session's next deadline, and waking it a moment early changes nothing`` () =
    let session, _ = Session.step (Session.start tickSettings t0) (t0.PlusSeconds 2) (ClientText(ReadOnlyMemory PingIt.Frame))
    let due = t0.PlusSeconds 7
    Xunit.Assert.Equal(Some due, Session.nextDeadline session)
    let early, effects = Session.step session (due.PlusMilliseconds -1L) Wake
    Xunit.Assert.Empty(effects)
    Xunit.Assert.Equal(session, early)
    let ended, effects = Session.step early due Wake
    Xunit.Assert.Equal<Effect list>([ CloseClient(1000, "idle timeout: no traffic for 5 s") ], effects)
    Xunit.Assert.Equal(None, Session.nextDeadline ended)

[<Property>]
let ``no more connects start in any one second than the limit allows, and only those over it are refused`` (gaps: int list) =
    // Connects separated by gaps of 0-600 ms (to a refusing port, so each ends at once).
    let gaps = gaps |> List.map (fun n -> int64 (abs (n % 600)))
    let connect = ClientText(ReadOnlyMemory((ConnectTo("127.0.0.1", 7003, false)).Frame))
    let sim = Simulator({ tickSettings with IdleTimeoutSeconds = 0 }, standardWorld, 1, calm)
    for gap in gaps do
        sim.Advance gap
        sim.Send connect
        sim.RunUntilQuiet()
    let dialledAt = [ for t in sim.Transitions do for e in t.Effects do match e with Dial _ -> yield t.At | _ -> () ]
    let withinASecondOf (t: Instant) = dialledAt |> List.filter (fun d -> d <= t && t.Since d < 1000L) |> List.length
    // The model: a connect is refused when 3 began in the second before it.
    let expectedRefusals =
        gaps
        |> List.fold (fun (now: Instant, began: Instant list, refused) gap ->
            let now = now.PlusMilliseconds gap
            let recent = began |> List.filter (fun b -> now.Since b < 1000L)
            if recent.Length >= 3 then now, began, refused + 1 else now, now :: began, refused) (t0, [], 0)
        |> fun (_, _, refused) -> refused
    let limited = answers sim.Outputs |> List.filter (function ConnectFailed m -> m.StartsWith "too many connects" | _ -> false)
    dialledAt |> List.forall (fun t -> withinASecondOf t <= 3) && limited.Length = expectedRefusals

[<Property>]
let ``the queue behind a pending connect holds at most MaxPendingBytes of payload before the driver must stop feeding`` (sizes: byte list) =
    let settings = { standardSettings with MaxPendingBytes = 1000 }
    let silentConnect = ClientText(ReadOnlyMemory((ConnectTo("127.0.0.1", 7004, false)).Frame))
    let mutable session, _ = Session.step (Session.start settings t0) t0 silentConnect
    let mutable fed = 0
    for size in sizes do
        if Session.acceptsRequest session then
            let frame = ClientText(ReadOnlyMemory((SendText(String('x', int size * 4))).Frame))
            session <- fst (Session.step session t0 frame)
            fed <- fed + int size * 4
    // Whatever was fed, the core never holds more than the bound plus the one request that crossed it.
    fed <= 1000 + 255 * 4

[<Property>]
let ``queuedBytes is the payload fed behind a pending connect, and nothing once the queue has run`` (sizes: byte list) =
    let silentConnect = ClientText(ReadOnlyMemory((ConnectTo("127.0.0.1", 7004, false)).Frame))
    let mutable session, _ = Session.step (Session.start standardSettings t0) t0 silentConnect
    let mutable fed = 0
    for size in sizes do
        if Session.acceptsRequest session then
            session <- fst (Session.step session t0 (ClientText(ReadOnlyMemory((SendText(String('x', int size))).Frame))))
            fed <- fed + int size
    let whileWaiting = Session.queuedBytes session
    // The connect fails: the queued requests are answered, nothing stays queued.
    let afterwards, _ = Session.step session t0 (DialFailedWith(1L, ConnectionRefused))
    whileWaiting = fed && Session.queuedBytes afterwards = 0

[<Xunit.Fact>]
let ``happy eyeballs: a silent first address does not hold up the second`` () =
    // Resolved to a silent address and an echoing one (ports are the simulated peers: 7004 silent, 7001 echo).
    let session, _ = Session.step (Session.start standardSettings t0) t0 (ClientText(ReadOnlyMemory((ConnectTo("db.example", 7004, false)).Frame)))
    let silent, echo = IPAddress.Parse "2001:4860::1", IPAddress.Parse "93.184.216.34"
    let session, effects = Session.step session t0 (Resolved(1L, [ silent; echo ]))
    Xunit.Assert.Equal<Effect list>([ Dial(1L, TcpHop(IPEndPoint(silent, 7004))) ], effects)
    // The next attempt is due after the attempt delay (250 ms), before the connect timeout.
    let due = t0.PlusMilliseconds 250L
    Xunit.Assert.Equal(Some due, Session.nextDeadline session)
    let session, effects = Session.step session (due.PlusMilliseconds -1L) Wake
    Xunit.Assert.Empty(effects)
    let session, effects = Session.step session due Wake
    Xunit.Assert.Equal<Effect list>([ Dial(1L, TcpHop(IPEndPoint(echo, 7004))) ], effects)
    // Both in flight: one failure is not the end…
    let session, effects = Session.step session due (DialFailedWith(1L, ConnectionRefused))
    Xunit.Assert.Empty(effects)
    // …the other's success is, observed with how long the connect took.
    let _, effects = Session.step session (t0.PlusMilliseconds 300L) (Dialled 1L)
    Xunit.Assert.Equal<Effect list>([ Reply(Done "connect"); Observe(ConnectAnswered(Some 300L, 0)) ], effects)

[<Xunit.Fact>]
let ``happy eyeballs: when every attempt in flight fails, one code 2 answers the connect`` () =
    let session, _ = Session.step (Session.start standardSettings t0) t0 (ClientText(ReadOnlyMemory((ConnectTo("db.example", 7004, false)).Frame)))
    let a, b = IPAddress.Parse "2001:4860::1", IPAddress.Parse "93.184.216.34"
    let session, _ = Session.step session t0 (Resolved(1L, [ a; b ]))
    let later = t0.PlusMilliseconds 250L
    let session, _ = Session.step session later Wake
    let session, first = Session.step session later (DialFailedWith(1L, ConnectionRefused))
    let session, last = Session.step session later (DialFailedWith(1L, HostUnreachable))
    Xunit.Assert.Empty(first)
    Xunit.Assert.Equal<Effect list>([ CloseConnection 1L; Reply(ConnectFailed "host unreachable"); Observe(ConnectAnswered(Some 250L, 2)) ], last)
    Xunit.Assert.True(session.Phase.IsIdle)

[<Xunit.Fact>]
let ``a runner fault ends the session with code 1 and close 1011, closing its connection`` () =
    let session, _ = Session.step (Session.start standardSettings t0) t0 (ClientText(ReadOnlyMemory((ConnectTo("127.0.0.1", 7001, false)).Frame)))
    let session, _ = Session.step session t0 (Dialled 1L)
    let session, effects = Session.step session t0 (RunnerFault "the server hit an internal error")
    Xunit.Assert.Equal<Effect list>(
        [ CloseConnection 1L; Reply(Unexpected "the server hit an internal error"); CloseClient(1011, "unexpected server error") ], effects)
    Xunit.Assert.True(session.Phase.IsEnded)

[<Xunit.Fact>]
let ``a tls connect: plaintext before the handshake fails it with code 8, never relayed; starttls relays what came before`` () =
    let connect = ClientText(ReadOnlyMemory((ConnectTls("127.0.0.1", 7001, false)).Frame))
    let session, effects = Session.step (Session.start standardSettings t0) t0 connect
    Xunit.Assert.Contains(Dial(1L, TcpHop(IPEndPoint(IPAddress.Loopback, 7001))), effects)
    let securing, effects = Session.step session t0 (Dialled 1L)
    Xunit.Assert.Equal<Effect list>([ SecureConnection(1L, "127.0.0.1") ], effects)
    let failed, effects = Session.step securing t0 (Received(1L, ReadOnlyMemory "220 plaintext\r\n"B))
    Xunit.Assert.Equal<Effect list>(
        [ CloseConnection 1L; Reply(TlsFailed "the peer sent bytes before the TLS handshake"); Observe(ConnectAnswered(Some 0L, 8)) ],
        effects)
    Xunit.Assert.True(failed.Phase.IsIdle)
    // The same bytes before a starttls handshake are the protocol's plaintext: relayed before `starttls done`.
    let opened, _ = Session.step (fst (Session.step (Session.start standardSettings t0) t0 (ClientText(ReadOnlyMemory((ConnectTo("127.0.0.1", 7001, false)).Frame))))) t0 (Dialled 1L)
    let upgrading, effects = Session.step opened t0 (ClientText(ReadOnlyMemory StartTlsIt.Frame))
    Xunit.Assert.Equal<Effect list>([ SecureConnection(1L, "127.0.0.1") ], effects)
    let upgrading, effects = Session.step upgrading t0 (Received(1L, ReadOnlyMemory "220 go ahead\r\n"B))
    Xunit.Assert.True((match effects with [ Reply(RecvData _) ] -> true | _ -> false), sprintf "%A" effects)
    let _, effects = Session.step upgrading t0 (Secured(1L, simulatedCertificate))
    Xunit.Assert.Equal<Effect list>([ Reply(Done "starttls") ], effects)

[<Xunit.Fact>]
let ``a reconfigured session keeps its open connection, judges its next connect by the new policy, and keeps its own scope`` () =
    let rule text = match Policy.parseRule text with Ok r -> r | Error e -> failwith e
    let scoped = Session.narrowTo [ rule "127.0.0.0/8" ] standardSettings |> Session.withoutSsh
    let connect = ClientText(ReadOnlyMemory((ConnectTo("127.0.0.1", 7001, false)).Frame))
    let opened, _ = Session.step (fst (Session.step (Session.start scoped t0) t0 connect)) t0 (Dialled 1L)
    // The server now denies what the session is connected to.
    let server = { standardSettings with Policy = { standardSettings.Policy with Deny = [ rule "127.0.0.1" ] } }
    let reloaded = Session.reconfigure server opened
    Xunit.Assert.Equal<Policy.Rule list list>([ [ rule "127.0.0.0/8" ] ], reloaded.Settings.Policy.Scopes)
    Xunit.Assert.False(reloaded.Settings.SshAllowed)
    let _, effects = Session.step reloaded t0 (Received(1L, ReadOnlyMemory "still here"B))
    Xunit.Assert.True((match effects with [ Reply(RecvData _) ] -> true | _ -> false), sprintf "%A" effects)
    let _, effects = Session.step reloaded t0 connect
    Xunit.Assert.Contains(Reply(Forbidden("127.0.0.1", "deny rule 127.0.0.1")), effects)

[<Property>]
let ``every close reason fits in a close frame: at most 123 UTF-8 bytes, cut at a character boundary`` (reason: NonNull<string>) =
    let reason = reason.Get + String.replicate (abs (hash reason.Get) % 3) "🔌 peer said something long; "
    match Effect.closeClient 1011 reason with
    | CloseClient(1011, cut) ->
        let kept = cut.TrimEnd '…'
        Text.Encoding.UTF8.GetByteCount cut <= Effect.MaxCloseReasonBytes
        && (cut = reason || (cut.EndsWith "…" && reason.StartsWith(kept, StringComparison.Ordinal)))
        && not (kept.Length > 0 && Char.IsHighSurrogate kept.[kept.Length - 1])
    | _ -> false

[<Xunit.Fact>]
let ``a client message that keeps coming is never stalled; one that stops is closed when its stall deadline passes`` () =
    let settings = { standardSettings with MessageTimeoutSeconds = 3 }
    // Parts every 2 s for 10 s, then the whole message: no close.
    let session =
        [ 0..5 ] |> List.fold (fun s i -> fst (Session.step s (t0.PlusSeconds(2 * i)) ClientMessageProgress)) (Session.start settings t0)
    let session, effects = Session.step session (t0.PlusSeconds 11) (ClientText(ReadOnlyMemory PingIt.Frame))
    Xunit.Assert.Equal<Effect list>([ Reply(Done "ping") ], effects)
    Xunit.Assert.Equal(None, session.MessageStallsAt)
    // A part, then nothing: closed 1008 three seconds later, and not a moment before.
    let session, _ = Session.step session (t0.PlusSeconds 20) ClientMessageProgress
    Xunit.Assert.Equal(Some(t0.PlusSeconds 23), Session.nextDeadline session)
    let session, early = Session.step session (t0.PlusMilliseconds 22_999L) Wake
    Xunit.Assert.Empty(early)
    let session, effects = Session.step session (t0.PlusSeconds 23) Wake
    Xunit.Assert.Equal<Effect list>([ CloseClient(1008, "message stalled: no bytes of it for 3 s") ], effects)
    Xunit.Assert.True(session.Phase.IsEnded)

[<Xunit.Fact>]
let ``a message handed over whole after its stall deadline did not stall: it is answered`` () =
    // Found in review: the driver dequeued the finished message a moment after the deadline, and the core closed 1008.
    let settings = { standardSettings with MessageTimeoutSeconds = 30 }
    let session, _ = Session.step (Session.start settings t0) t0 ClientMessageProgress
    let session, effects = Session.step session (t0.PlusMilliseconds 30_001L) (ClientText(ReadOnlyMemory PingIt.Frame))
    Xunit.Assert.Equal<Effect list>([ Reply(Done "ping") ], effects)
    Xunit.Assert.False(session.Phase.IsEnded)
