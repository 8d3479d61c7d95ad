/// The Wisp connection: every input's outcome, and, driven by a seeded scheduler with echo peers, that many
/// interleaved streams each get their bytes back in order, none lost or doubled, within bounded buffers.
module Ws2s.Protocol.Tests.WispSessionTests

open System
open System.Net
open FsCheck.Xunit
open Xunit
open Ws2s.Protocol
open Ws2s.Protocol.WispPacket
open Ws2s.Protocol.Tests.Generators

/// A DATA packet (the codec's, from an array).
let data id (bytes: byte[]) = WispPacket.data id (ReadOnlySpan bytes)

let wisp = { WispStreams.defaultWispSettings with BufferPackets = 8 }

/// The packets the effects send to the client, parsed.
let sent (effects: Effect list) =
    effects
    |> List.choose (function
        | ReplyBinary bytes -> Some(match parse bytes with Ok p -> p | Error e -> failwith e.Reason)
        | ReplyWispData(stream, payload) -> Some(Data(stream, payload))
        | _ -> None)

/// The writes the effects start, with their bytes (memories compare by reference).
let writes (effects: Effect list) = effects |> List.choose (function Write(g, bytes) -> Some(g, bytes.ToArray()) | _ -> None)

let closes (effects: Effect list) = effects |> List.choose (function CloseClient(status, _) -> Some status | _ -> None)

let message (packet: ReadOnlyMemory<byte>) = ClientBinary packet

let start () = WispSession.start standardSettings wisp t0 |> fst

let step session input = WispSession.step session t0 input

/// The generation stream `id` gets as the `n`th stream opened.
let generation n (id: uint32) = (int64 n <<< 32) ||| int64 id

let connectTo id port = message (connect id 1uy port "127.0.0.1")

let opened id =
    let session, _ = step (start ()) (connectTo id 7001us)
    let session, _ = step session (Dialled(generation 1 id))
    session

[<FsCheck.Xunit.Property>]
let ``a DATA header written before a payload in place makes the same packet as the copying encoder`` (stream: uint32) (payload: byte[]) =
    let payload = if isNull payload then [||] else payload
    let buffer = Array.zeroCreate<byte> (HeaderBytes + payload.Length)
    payload.CopyTo(buffer, HeaderBytes)
    writeDataHeader (Span(buffer, 0, HeaderBytes)) stream
    buffer = (WispPacket.data stream (ReadOnlySpan payload)).ToArray()
    && (match parse (ReadOnlyMemory buffer) with
        | Ok(Data(id, bytes)) -> id = stream && bytes.ToArray() = payload
        | _ -> false)

[<Fact>]
let ``v1: the server's first words are CONTINUE on stream 0 with the buffer size, and nothing else`` () =
    let _, effects = WispSession.start standardSettings wisp t0
    Assert.Equal<Packet list>([ Continue(0u, 8u) ], sent effects)

[<Fact>]
let ``v2: INFO first (version 2.0, stream-open confirmation and the MOTD), then CONTINUE on stream 0`` () =
    let _, effects = WispSession.start standardSettings { wisp with Version2 = true; Motd = Some "hello" } t0
    match sent effects with
    | [ Info(0u, 2uy, 0uy, extensions); Continue(0u, 8u) ] ->
        Assert.Equal<byte list>([ ExtensionId.StreamConfirmation; ExtensionId.Motd ], extensions |> List.map (fun e -> e.Id))
        Assert.Equal("hello", Text.Encoding.UTF8.GetString(extensions[1].Payload.Span))
    | other -> failwithf "%A" other

[<Fact>]
let ``a CONNECT dials the judged address; DATA is written; the peer's bytes come back as DATA on the same stream`` () =
    let session, effects = step (start ()) (connectTo 7u 7001us)
    Assert.Contains(Dial(generation 1 7u, TcpHop(IPEndPoint(IPAddress.Loopback, 7001))), effects)
    let session, _ = step session (Dialled(generation 1 7u))
    let session, effects = step session (message (data 7u "abc"B))
    Assert.Equal<(int64 * byte[]) list>([ generation 1 7u, "abc"B ], writes effects)
    let _, effects = step session (Received(generation 1 7u, ReadOnlyMemory "xyz"B))
    match sent effects with
    | [ Data(7u, payload) ] -> Assert.Equal<byte[]>("xyz"B, payload.ToArray())
    | other -> failwithf "%A" other

[<Fact>]
let ``v2 with confirmation on both sides: a connected stream gets a CONTINUE; a v2 client without it, none`` () =
    let confirmed =
        let session, _ = WispSession.start standardSettings { wisp with Version2 = true } t0
        let ext = [ { Id = ExtensionId.StreamConfirmation; Payload = ReadOnlyMemory.Empty } ]
        let session, _ = step session (message (info 2uy 0uy ext))
        let session, _ = step session (connectTo 3u 7001us)
        step session (Dialled(generation 1 3u)) |> snd |> sent
    Assert.Equal<Packet list>([ Continue(3u, 8u) ], confirmed)
    let unconfirmed =
        let session, _ = WispSession.start standardSettings { wisp with Version2 = true } t0
        let session, _ = step session (message (info 2uy 0uy []))
        let session, _ = step session (connectTo 3u 7001us)
        step session (Dialled(generation 1 3u)) |> snd |> sent
    Assert.Empty(unconfirmed)

[<Fact>]
let ``a v2 server facing a v1 client (its first packet is not INFO) serves that packet as v1`` () =
    let session, _ = WispSession.start standardSettings { wisp with Version2 = true } t0
    let session, effects = step session (connectTo 3u 7001us)
    Assert.Contains(Dial(generation 1 3u, TcpHop(IPEndPoint(IPAddress.Loopback, 7001))), effects)
    Assert.Empty(step session (Dialled(generation 1 3u)) |> snd |> sent) // no confirmation for a v1 client

let closeReasonOf effects =
    match sent effects |> List.choose (function Close(id, r) -> Some(id, r) | _ -> None) with
    | [ closed ] -> closed
    | other -> failwithf "expected one CLOSE, got %A" other

[<Fact>]
let ``failures close the stream with the protocol's reason: refused 0x44, unreachable 0x42, timed out 0x43, blocked 0x48`` () =
    let session, _ = step (start ()) (connectTo 5u 7003us)
    Assert.Equal((5u, Refused), step session (DialFailedWith(generation 1 5u, ConnectionRefused)) |> snd |> closeReasonOf)
    Assert.Equal((5u, Unreachable), step session (DialFailedWith(generation 1 5u, HostUnreachable)) |> snd |> closeReasonOf)
    let session, effects = step (start ()) (message (connect 5u 1uy 80us "nowhere.invalid"))
    Assert.Equal((5u, Unreachable), closeReasonOf effects)
    Assert.True(session.Streams.IsEmpty)
    let session, _ = step (start ()) (connectTo 5u 7004us)
    let later = t0.PlusSeconds standardSettings.ConnectTimeoutSeconds
    Assert.Equal(Some later, WispSession.nextDeadline session)
    Assert.Equal((5u, TimedOut), WispSession.step session later Wake |> snd |> closeReasonOf)
    let strict = { standardSettings with Policy = Policy.serverLocalOnly false }
    let session, _ = WispSession.start strict wisp t0
    let _, effects = step session (connectTo 5u 7001us)
    Assert.Equal((5u, Blocked), closeReasonOf effects)
    Assert.DoesNotContain(effects, fun e -> e.IsDial)

[<Fact>]
let ``the peer's end closes the stream 0x02 after its last bytes; a reset, 0x03`` () =
    let _, effects = step (opened 9u) (PeerFinished(generation 1 9u))
    Assert.Equal((9u, Voluntary), closeReasonOf effects)
    Assert.Contains(CloseConnection(generation 1 9u), effects)
    let _, effects = step (opened 9u) (SocketFailed(generation 1 9u, "connection reset"))
    Assert.Equal((9u, NetworkError), closeReasonOf effects)

[<Fact>]
let ``every odd input has its outcome: unknown streams, id 0, short packets, text, unknown types, a live id reused`` () =
    let session = opened 9u
    // DATA and CLOSE for a stream that is not there: nothing (it may have closed while they were on the way).
    Assert.Empty(step session (message (data 4u "x"B)) |> snd)
    Assert.Empty(step session (message (close 4u Voluntary)) |> snd)
    // The client closes a stream: its connection closes, nothing is said back.
    let after, effects = step session (message (close 9u Voluntary))
    Assert.Equal<Effect list>([ CloseConnection(generation 1 9u) ], effects)
    Assert.True(after.Streams.IsEmpty)
    // A CONNECT on a live id: the live stream is closed with it (0x41), and nothing is dialled.
    let after, effects = step session (connectTo 9u 7001us)
    Assert.Contains(CloseConnection(generation 1 9u), effects)
    Assert.Equal((9u, Invalid), closeReasonOf effects)
    Assert.DoesNotContain(effects, fun e -> e.IsDial)
    Assert.True(after.Streams.IsEmpty)
    // A CONNECT cut short, a UDP one (not offered), port 0, a bad host name: CLOSE 0x41 on that stream alone.
    for bad in [ ReadOnlyMemory [| 1uy; 2uy; 0uy; 0uy; 0uy; 1uy |]; connect 2u 2uy 53us "127.0.0.1"; connect 2u 1uy 0us "127.0.0.1"; connect 2u 1uy 80us "bad host" ] do
        let after, effects = step session (message bad)
        Assert.Equal((2u, Invalid), closeReasonOf effects)
        Assert.True(after.Streams.ContainsKey 9u)
    // The connection itself: id 0, a message shorter than the header, an unknown type, text: closed with words.
    for bad, status in [ connect 0u 1uy 80us "127.0.0.1", 1002; data 0u "x"B, 1002; ReadOnlyMemory [| 2uy; 0uy |], 1002; ReadOnlyMemory [| 9uy; 1uy; 0uy; 0uy; 0uy |], 1002 ] do
        let after, effects = step session (message bad)
        Assert.Equal<int list>([ status ], closes effects)
        Assert.Contains(CloseConnection(generation 1 9u), effects)
        Assert.True(WispSession.isEnded after)
    Assert.Equal<int list>([ 1003 ], step session (ClientText(ReadOnlyMemory "{}"B)) |> snd |> closes)
    Assert.Equal<int list>([ 1000 ], step session (message (close 0u Voluntary)) |> snd |> closes)
    // A client's CONTINUE or a late INFO: nothing.
    Assert.Empty(step session (message (continueWith 9u 5u)) |> snd)
    Assert.Empty(step session (message (info 2uy 0uy [])) |> snd)

[<Fact>]
let ``limits: streams per connection and opens per second are refused 0x49, each on its own stream`` () =
    let tight = { wisp with MaxStreams = 2; MaxOpensPerSecond = 3 }
    let session, _ = WispSession.start standardSettings tight t0
    let session, _ = step session (connectTo 1u 7001us)
    let session, _ = step session (connectTo 2u 7001us)
    let session, effects = step session (connectTo 3u 7001us)
    Assert.Equal((3u, Throttled), closeReasonOf effects)
    let session, _ = step session (message (close 1u Voluntary))
    let session, effects = step session (connectTo 4u 7001us) // room again, but the third open in this second
    Assert.Contains(effects, fun e -> e.IsDial)
    let session, _ = step session (message (close 4u Voluntary))
    let session, effects = step session (connectTo 5u 7001us) // a fourth within the second
    Assert.Equal((5u, Throttled), closeReasonOf effects)
    let _, effects = WispSession.step session (t0.PlusSeconds 1) (connectTo 5u 7001us)
    Assert.Contains(effects, fun e -> e.IsDial)

[<Fact>]
let ``a name the driver would not look up (the client's lookups per second) closes the stream 0x49; a ws2s connect gets code 2 in words`` () =
    let session, effects = step (start ()) (message (connect 3u 1uy 7001us "printer.example"))
    Assert.Contains(Resolve(generation 1 3u, "printer.example"), effects)
    let refusal = DialError.Throttled "too many name lookups from this client"
    let _, effects = step session (DialFailedWith(generation 1 3u, refusal))
    Assert.Equal((3u, Throttled), closeReasonOf effects)
    // The same input in a ws2s session: the connect is answered code 2 with the driver's words.
    let connect = Text.Encoding.UTF8.GetBytes """{"command":"connect","host":"printer.example","port":7001}"""
    let ws2s, effects = Session.step (Session.start standardSettings t0) t0 (ClientText(ReadOnlyMemory connect))
    let g = effects |> List.pick (function Resolve(g, _) -> Some g | _ -> None)
    let _, effects = Session.step ws2s t0 (DialFailedWith(g, refusal))
    Assert.Contains(Reply(ConnectFailed "too many name lookups from this client"), effects)

[<Fact>]
let ``credits: a stream's queue past twice the grant is closed 0x49; the other streams go on`` () =
    let session = opened 1u
    let session, _ = step session (connectTo 2u 7001us)
    let session, _ = step session (Dialled(generation 2 2u))
    // The first DATA is in flight; 2 x 8 more queue; one more is past anything a client that keeps to its credits sends.
    let mutable session = session
    for _ in 1 .. 1 + 2 * wisp.BufferPackets do
        let next, effects = step session (message (data 1u "x"B))
        Assert.Empty(sent effects)
        session <- next
    Assert.Equal(2 * wisp.BufferPackets, WispSession.queuedBytes session)
    let session, effects = step session (message (data 1u "x"B))
    Assert.Equal((1u, Throttled), closeReasonOf effects)
    Assert.Equal(0, WispSession.queuedBytes session)
    let _, effects = step session (message (data 2u "y"B))
    Assert.Equal<(int64 * byte[]) list>([ generation 2 2u, "y"B ], writes effects)

[<Fact>]
let ``a stream whose peer reads nothing holds up no other stream: the connection keeps reading`` () =
    let session = opened 1u
    let session, _ = step session (connectTo 2u 7001us)
    let session, _ = step session (Dialled(generation 2 2u))
    let big = Array.zeroCreate<byte> 65536
    let mutable session = session
    for _ in 1 .. wisp.BufferPackets do
        session <- fst (step session (message (data 1u big)))
    Assert.True(WispSession.queuedBytes session >= (wisp.BufferPackets - 1) * big.Length)
    Assert.True(WispSession.acceptsFrame session)
    let _, effects = step session (message (data 2u "y"B))
    Assert.Equal<(int64 * byte[]) list>([ generation 2 2u, "y"B ], writes effects)

[<Fact>]
let ``a new grant comes only once the last is used up, and says what the buffer has room for`` () =
    let mutable session = opened 1u
    let mutable said = []
    // Eight DATA (the whole first grant); the first is being written, seven wait.
    for _ in 1 .. wisp.BufferPackets do
        let next, effects = step session (message (data 1u "x"B))
        session <- next
        said <- said @ sent effects
    Assert.Empty(said) // the buffer is full: no credit to give
    let session, effects = step session (WriteCompleted(generation 1 1u))
    Assert.Equal<Packet list>([ Continue(1u, 1u) ], sent effects) // one packet's room
    let session, effects = step session (message (data 1u "x"B))
    Assert.Empty(sent effects) // that grant is used up, and the buffer is full again
    let session, effects = step session (WriteCompleted(generation 1 1u))
    Assert.Equal<Packet list>([ Continue(1u, 1u) ], sent effects) // used up, and one packet's room again
    let _, effects = step session (WriteCompleted(generation 1 1u))
    Assert.Empty(sent effects) // more room, but the client still has that credit: no CONTINUE may cross its DATA

/// A seeded driver: echo peers that stall at random, a wire each way (client to server and back, in order, delivered
/// at random times, so a CONTINUE crosses DATA on the way), and a client that keeps to its credits as the protocol says:
/// it sets them from each CONTINUE and spends one per DATA.
type private Harness(streams: int, seed: int) =
    let random = Random seed
    let mutable session = start ()
    let mutable now = t0
    let events = Collections.Generic.Dictionary<Generation, Collections.Generic.Queue<Input>>()
    let toServer = Collections.Generic.Queue<Input>()
    let toClient = Collections.Generic.Queue<Packet>()
    let toSend = Array.init streams (fun i -> Array.init (1 + random.Next 60) (fun j -> Array.init (1 + random.Next 300) (fun k -> byte (i * 31 + j * 7 + k))))
    let nextChunk = Array.zeroCreate<int> streams
    let credits = Array.create streams wisp.BufferPackets
    let received = Array.init streams (fun _ -> Collections.Generic.List<byte>())
    /// How eagerly the peers work, this run: a low value keeps them stalled much of the time.
    let peerPace = 0.05 + random.NextDouble() * 0.9
    let mutable maxHeld = 0
    let mutable closedWith = []
    member _.Feed input =
        let next, effects = WispSession.step session now input
        session <- next
        for effect in effects do
            match effect with
            | Dial(g, _) -> events[g] <- Collections.Generic.Queue [ Dialled g ]
            | Write(g, bytes) ->
                events[g].Enqueue(WriteCompleted g)
                // The echo peer sends the bytes back in up to three reads.
                let copy = bytes.ToArray()
                let cut1 = random.Next(copy.Length + 1)
                let cut2 = cut1 + random.Next(copy.Length - cut1 + 1)
                for a, b in [ 0, cut1; cut1, cut2; cut2, copy.Length ] do
                    if b > a then events[g].Enqueue(Received(g, ReadOnlyMemory(copy[a .. b - 1])))
            | CloseConnection g -> events.Remove g |> ignore
            | ReplyBinary bytes ->
                match parse bytes with
                | Ok packet -> toClient.Enqueue packet
                | Error e -> failwith e.Reason
            | ReplyWispData(stream, payload) ->
                // Framed as a driver frames it, and read back as the client reads it.
                match parse (WispPacket.data stream payload.Span) with
                | Ok packet -> toClient.Enqueue packet
                | Error e -> failwith e.Reason
            | _ -> ()
        for stream in session.Streams.Values do
            let held =
                match stream.Inner.Phase with
                | Session.Busy(Session.Writing _, pending) -> 1 + List.length pending
                | Session.Busy(_, pending) -> List.length pending
                | _ -> 0
            maxHeld <- max maxHeld held
    member _.Arrive(packet: Packet) =
        match packet with
        | Data(id, payload) -> received[int id - 1].AddRange(payload.ToArray())
        | Continue(0u, _) -> ()
        | Continue(id, c) -> credits[int id - 1] <- int c
        | Close(id, reason) -> closedWith <- (id, reason) :: closedWith
        | other -> failwithf "unexpected %A" other
    member this.Run() =
        for i in 1 .. streams do toServer.Enqueue(connectTo (uint32 i) 7001us)
        let mutable steps = 0
        let clientCanSend i = nextChunk[i] < toSend[i].Length && credits[i] > 0
        let pending () = toServer.Count > 0 || toClient.Count > 0 || events.Values |> Seq.exists (fun q -> q.Count > 0)
        while (pending () || Seq.exists clientCanSend [ 0 .. streams - 1 ]) && steps < 400_000 do
            steps <- steps + 1
            let senders = [ 0 .. streams - 1 ] |> List.filter clientCanSend
            let busy = events |> Seq.filter (fun kv -> kv.Value.Count > 0) |> Seq.map (fun kv -> kv.Key) |> List.ofSeq
            match random.Next 4 with
            | 0 when not senders.IsEmpty ->
                let i = senders[random.Next senders.Length]
                credits[i] <- credits[i] - 1
                toServer.Enqueue(message (data (uint32 i + 1u) toSend.[i].[nextChunk.[i]]))
                nextChunk[i] <- nextChunk[i] + 1
            | 1 when toServer.Count > 0 -> this.Feed(toServer.Dequeue())
            | 2 when toClient.Count > 0 -> this.Arrive(toClient.Dequeue())
            | 3 when not busy.IsEmpty && (random.NextDouble() < peerPace || (senders.IsEmpty && toServer.Count = 0 && toClient.Count = 0)) ->
                let g = busy[random.Next busy.Length]
                this.Feed(events[g].Dequeue())
            | _ -> ()
            if random.Next 50 = 0 then now <- now.PlusMilliseconds 1L
        steps
    member _.Sent i = Array.concat toSend[i]
    member _.Received i = received[i].ToArray()
    member _.MaxHeld = maxHeld
    member _.Closed = closedWith
    member _.Session = session

[<Property(MaxTest = 80)>]
let ``interleaved streams each get back exactly their bytes, in order; a client that keeps to its credits never has more than the buffer held`` (seed: int) (count: byte) =
    let streams = 1 + int count % 12
    let harness = Harness(streams, seed)
    harness.Run() |> ignore
    for i in 0 .. streams - 1 do
        Assert.Equal<byte[]>(harness.Sent i, harness.Received i)
    Assert.Empty(harness.Closed)
    Assert.True(harness.MaxHeld <= wisp.BufferPackets, $"held {harness.MaxHeld} packets for one stream, buffer {wisp.BufferPackets}")
    Assert.Equal(streams, harness.Session.Streams.Count)
    Assert.Equal(0, WispSession.queuedBytes harness.Session)

[<Property(MaxTest = 300)>]
let ``any bytes from the client get a defined outcome: no exception, and a connection that ended says nothing more`` (messages: byte[] list) =
    let mutable session = opened 1u
    for bytes in messages do
        let bytes = if isNull bytes then [||] else bytes
        let before = WispSession.isEnded session
        let next, effects = step session (message (ReadOnlyMemory bytes))
        if before then Assert.Empty(effects)
        session <- next

[<Fact>]
let ``an INFO of more than 32 extensions closes the connection, whatever the state`` () =
    let many = List.init 33 (fun _ -> { Id = 9uy; Payload = ReadOnlyMemory.Empty })
    let _, effects = step (opened 1u) (message (info 2uy 0uy many))
    Assert.Equal<int list>([ 1002 ], closes effects)
    Assert.Contains(CloseConnection(generation 1 1u), effects)

[<Fact>]
let ``UDP: offered in INFO and dialled only when on; no credits are granted or confirmed for it`` () =
    let udpOn = { standardSettings with Udp = Some [] }
    let session, effects = WispSession.start udpOn { wisp with Version2 = true } t0
    match sent effects with
    | Info(_, _, _, extensions) :: _ -> Assert.Contains(ExtensionId.Udp, extensions |> List.map (fun e -> e.Id))
    | other -> failwithf "%A" other
    let ext = [ { Id = ExtensionId.StreamConfirmation; Payload = ReadOnlyMemory.Empty } ]
    let session, _ = step session (message (info 2uy 0uy ext))
    let session, effects = step session (message (connect 4u 2uy 53us "127.0.0.1"))
    Assert.Contains(Dial(generation 1 4u, UdpHop(IPEndPoint(IPAddress.Loopback, 53))), effects)
    let mutable session, effects = step session (Dialled(generation 1 4u))
    Assert.Empty(sent effects) // no confirmation for UDP
    for _ in 1 .. 3 * wisp.BufferPackets do
        let s1, e1 = step session (message (data 4u "d"B))
        let s2, e2 = step s1 (WriteCompleted(generation 1 4u))
        Assert.Empty(sent (e1 @ e2))
        session <- s2
    // Off (the default): the same CONNECT is invalid, and INFO offers no UDP.
    let _, effects = WispSession.start standardSettings { wisp with Version2 = true } t0
    match sent effects with
    | Info(_, _, _, extensions) :: _ -> Assert.DoesNotContain(ExtensionId.Udp, extensions |> List.map (fun e -> e.Id))
    | other -> failwithf "%A" other
    Assert.Equal((4u, Invalid), step (start ()) (message (connect 4u 2uy 53us "127.0.0.1")) |> snd |> closeReasonOf)

[<Fact>]
let ``a stream idle for the idle timeout closes 0x47; the connection with no streams left closes an idle timeout after that`` () =
    let settings = { standardSettings with IdleTimeoutSeconds = 60 }
    let session, _ = WispSession.start settings wisp t0
    let session, _ = step session (connectTo 1u 7001us)
    let session, _ = step session (Dialled(generation 1 1u))
    let at59 = t0.PlusSeconds 59
    let session, effects = WispSession.step session at59 (message (data 1u "x"B))
    Assert.Empty(sent effects)
    let at119 = t0.PlusSeconds 119
    let session, effects = WispSession.step session at119 Wake
    Assert.Equal((1u, TransferTimedOut), closeReasonOf effects)
    Assert.False(WispSession.isEnded session) // its last stream just closed: the connection's idle time starts now
    Assert.Equal(Some(at119.PlusSeconds 60), WispSession.nextDeadline session)
    let session, effects = WispSession.step session (at119.PlusSeconds 60) Wake
    Assert.Equal<int list>([ 1000 ], closes effects)
    Assert.True(WispSession.isEnded session)

[<Fact>]
let ``a reload reaches the open streams: a shorter idle timeout moves their deadlines`` () =
    let session = opened 1u
    Assert.Equal(Some(t0.PlusSeconds standardSettings.IdleTimeoutSeconds), WispSession.nextDeadline session)
    let session = WispSession.reconfigure { standardSettings with IdleTimeoutSeconds = 5 } session
    Assert.Equal(Some(t0.PlusSeconds 5), WispSession.nextDeadline session)
    let _, effects = WispSession.step session (t0.PlusSeconds 5) Wake
    Assert.Equal((1u, TransferTimedOut), closeReasonOf effects)

/// A v2 connection admitted without its token: it must present one in its INFO (the password extension).
let withCredentials () = WispSession.start standardSettings { wisp with Version2 = true; Credentials = true } t0

let passwordInfo (payload: byte[]) = message (info 2uy 0uy [ { Id = ExtensionId.Password; Payload = ReadOnlyMemory payload } ])

/// Draft 5's encoding (wisp-js, epoxy): u8 username length, u16 password length, username, password.
let draft5 (user: string) (password: string) =
    let u, p = Text.Encoding.UTF8.GetBytes user, Text.Encoding.UTF8.GetBytes password
    Array.concat [ [| byte u.Length; byte p.Length; byte (p.Length >>> 8) |]; u; p ]

[<Fact>]
let ``credentials required: INFO asks for them, no CONTINUE before they are accepted, then streams go as usual`` () =
    let session, effects = withCredentials ()
    match sent effects with
    | [ Info(0u, 2uy, 0uy, extensions) ] ->
        let password = extensions |> List.find (fun e -> e.Id = ExtensionId.Password)
        Assert.Equal<byte[]>([| 1uy |], password.Payload.ToArray()) // required
    | other -> failwithf "%A" other
    let session, effects = step session (passwordInfo (draft5 "alice" "s3cret"))
    Assert.Equal<Effect list>([ CheckCredentials { Username = "alice"; Password = "s3cret" } ], effects)
    let session, effects = step session (CredentialsAccepted None)
    Assert.Equal<Packet list>([ Continue(0u, 8u) ], sent effects)
    let _, effects = step session (connectTo 1u 7001us)
    Assert.Contains(effects, fun e -> e.IsDial)

[<Fact>]
let ``both encodings of the password extension are read: draft 5's lengths, draft 6's rest`` () =
    Assert.Equal(Some { Username = "alice"; Password = "s3cret" }, credentials (ReadOnlyMemory(draft5 "alice" "s3cret")))
    let draft6 = Array.concat [ [| 5uy |]; "alice"B; "s3cret"B ]
    Assert.Equal(Some { Username = "alice"; Password = "s3cret" }, credentials (ReadOnlyMemory draft6))
    Assert.Equal(None, credentials (ReadOnlyMemory [| 9uy; 1uy |])) // a username longer than the payload
    // The password never shows in text a log could take.
    Assert.DoesNotContain("s3cret", string { Username = "alice"; Password = "s3cret" })
    Assert.DoesNotContain("s3cret", sprintf "%A" (CheckCredentials { Username = "alice"; Password = "s3cret" }))

[<Fact>]
let ``attacks on the credentials: none, a stream first, refused ones, too slow; each ends the connection without a dial`` () =
    let noDial (effects: Effect list) = Assert.DoesNotContain(effects, fun (e: Effect) -> e.IsDial || e.IsCheckCredentials)
    let endsWith reason status (session, effects) =
        noDial effects
        Assert.Contains(Close(0u, reason), sent effects)
        Assert.Equal<int list>([ status ], closes effects)
        Assert.True(WispSession.isEnded session)
    let fresh, _ = withCredentials ()
    endsWith AuthRequired 1008 (step fresh (message (info 2uy 0uy []))) // an INFO without them
    endsWith AuthRequired 1008 (step fresh (connectTo 1u 7001us)) // a stream before them
    endsWith AuthRequired 1008 (step fresh (passwordInfo [| 200uy |])) // unreadable ones
    let checking, _ = step fresh (passwordInfo (draft5 "mallory" "guess"))
    endsWith BadPassword 1008 (step checking (CredentialsRefused "the token is not valid"))
    let afterCheck, effects = step checking (connectTo 1u 7001us) // not waiting for the verdict
    noDial effects
    Assert.True(WispSession.isEnded afterCheck)
    // A silent client: the connect timeout after the upgrade.
    Assert.Equal(Some(t0.PlusSeconds standardSettings.ConnectTimeoutSeconds), WispSession.nextDeadline fresh)
    endsWith AuthRequired 1008 (WispSession.step fresh (t0.PlusSeconds standardSettings.ConnectTimeoutSeconds) Wake)
    // A verdict in any other state (a v1 connection, say) changes nothing.
    Assert.Empty(step (start ()) (CredentialsAccepted None) |> snd)

[<Fact>]
let ``a token's allow rules narrow every stream of the connection it admits`` () =
    let session, _ = withCredentials ()
    let session, _ = step session (passwordInfo (draft5 "" "jwt"))
    let session, _ = step session (CredentialsAccepted(Some [ "127.0.0.1:7002" ]))
    let _, effects = step session (connectTo 1u 7001us)
    Assert.Equal((1u, Blocked), closeReasonOf effects)
    let _, effects = step session (connectTo 2u 7002us)
    Assert.Contains(effects, fun e -> e.IsDial)
