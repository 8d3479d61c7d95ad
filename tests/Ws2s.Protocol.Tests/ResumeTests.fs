/// Resumable sessions in the core (spec/protocol.md, Resumable sessions): a connection that outlives its client's
/// WebSocket, what it keeps, and a resume that loses and repeats nothing.
module Ws2s.Protocol.Tests.ResumeTests

open System
open System.Text
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Ws2s.Protocol
open Ws2s.Protocol.Tests.Generators

let private frame (json: string) = ClientText(ReadOnlyMemory(Encoding.UTF8.GetBytes json))
let private connect resumable binary =
    frame $"""{{"command":"connect","host":"127.0.0.1","port":7001,"resumable":{(if resumable then "true" else "false")},"binary":{(if binary then "true" else "false")}}}"""
let private sendb (bytes: byte[]) = frame $"""{{"command":"sendb","data":"{Convert.ToBase64String bytes}"}}"""
let private ack (received: int64) = frame $"""{{"command":"ack","received":{received}}}"""
let private at (seconds: float) = { Milliseconds = int64 (seconds * 1000.0) }
let private bytes (text: string) = ReadOnlyMemory(Encoding.UTF8.GetBytes text)

let private settingsWith grace buffered =
    { standardSettings with Resume = { GraceSeconds = grace; MaxBufferedBytes = buffered } }

/// Steps the session through `inputs` at `now`, giving the last session and every effect.
let private run session now inputs =
    inputs |> List.fold (fun (s, all) i -> let s, e = Session.step s now i in s, all @ e) (session, [])

/// A session whose connect (generation 1) is done, resumable if asked; and the connect's effects.
let private connected settings resumable binary =
    run (Session.start settings t0) t0 [ connect resumable binary; Dialled 1L ]

let private replies effects =
    effects |> List.choose (function Reply r -> Some r | _ -> None)

let private data effects =
    effects
    |> List.collect (function Reply(RecvData b) | ReplyBinary b -> [ Encoding.UTF8.GetString(b.ToArray()) ] | _ -> [])
    |> String.concat ""

[<Fact>]
let ``a connect that asks to be resumable is answered with a token, one that does not is answered as ever`` () =
    let _, asked = connected standardSettings true false
    Assert.Contains(Reply ConnectedResumable, asked)
    let _, plain = connected standardSettings false false
    Assert.Contains(Reply(Done "connect"), plain)
    Assert.DoesNotContain(Reply ConnectedResumable, plain)
    // A server with resumption off (grace 0) does not offer it.
    let _, off = connected (settingsWith 0 4096) true false
    Assert.Contains(Reply(Done "connect"), off)

[<Fact>]
let ``a client lost without a close frame suspends a resumable session: the connection stays and nothing goes to the client`` () =
    let session, _ = connected standardSettings true false
    let session, effects = Session.step session (at 1.0) ClientLost
    Assert.Equal<Effect list>([ Observe Suspended ], effects)
    Assert.False(session.Phase.IsEnded)
    let session, effects = Session.step session (at 2.0) (Received(1L, bytes "while away"))
    Assert.Empty(replies effects)
    Assert.Equal(10L, Session.keptBytes session)

[<Fact>]
let ``a close frame, a lost client of a session that is not resumable, or a server without resumption end the session as before`` () =
    for settings, resumable, input in
        [ standardSettings, true, ClientGone
          standardSettings, false, ClientLost
          settingsWith 0 4096, true, ClientLost ] do
        let session, _ = connected settings resumable false
        let session, effects = Session.step session (at 1.0) input
        Assert.True(session.Phase.IsEnded)
        Assert.Contains(CloseConnection 1L, effects)

[<Fact>]
let ``a suspended session ends when its grace ends: the connection closed, counted as expired`` () =
    let session, _ = connected (settingsWith 30 4096) true false
    let session, _ = Session.step session (at 10.0) ClientLost
    Assert.Equal(Some(at 40.0), Session.nextDeadline session)
    let session, early = Session.step session (at 39.9) Wake
    Assert.False(session.Phase.IsEnded)
    Assert.Empty(early)
    let session, effects = Session.step session (at 40.0) Wake
    Assert.True(session.Phase.IsEnded)
    Assert.Contains(CloseConnection 1L, effects)
    Assert.Contains(Observe Expired, effects)

[<Fact>]
let ``suspended, the peer is read only until the session keeps maxBufferedBytes`` () =
    let session, _ = connected (settingsWith 30 16) true false
    let session, _ = Session.step session (at 1.0) ClientLost
    let session, _ = Session.step session (at 1.0) (Received(1L, bytes "0123456789"))
    Assert.True(Session.acceptsPeerData session)
    let session, _ = Session.step session (at 1.0) (Received(1L, bytes "abcdef"))
    Assert.False(Session.acceptsPeerData session)

[<Fact>]
let ``with its client there too, the peer is not read past maxBufferedBytes unacknowledged; an ack lets it be read again`` () =
    let session, _ = connected (settingsWith 30 16) true false
    let session, _ = run session (at 1.0) [ Received(1L, bytes "0123456789"); Received(1L, bytes "abcdefghij") ]
    Assert.Equal(20L, Session.keptBytes session) // nothing dropped: every byte the client has not acknowledged
    Assert.False(Session.acceptsPeerData session)
    let session, _ = Session.step session (at 1.0) (ack 12L)
    Assert.Equal(8L, Session.keptBytes session)
    Assert.True(Session.acceptsPeerData session)
    // A client that says it has fewer bytes than it acknowledged cannot resume: the server let them go.
    let session, _ = Session.step session (at 2.0) ClientLost
    let _, effects = Session.step session (at 3.0) (ResumeAsked 3L)
    Assert.Equal<Effect list>([ RefuseResume "the client has 3 bytes; the server keeps bytes 12 to 20" ], effects)

[<Fact>]
let ``a resume acknowledges what the client says it had: a window full of bytes it had, with its acks lost, opens again`` () =
    // The client had all 20 bytes but its acks were lost with the WebSocket; it says so in its resume. Were those bytes
    // still counted, the peer would never be read again: nothing new comes to the client, so no ack could follow.
    let session, _ = connected (settingsWith 30 16) true false
    let session, _ = run session (at 1.0) [ Received(1L, bytes "0123456789"); Received(1L, bytes "abcdefghij"); ClientLost ]
    Assert.False(Session.acceptsPeerData session)
    let session, _ = Session.step session (at 2.0) (ResumeAsked 20L)
    Assert.Equal(0L, Session.keptBytes session)
    Assert.True(Session.acceptsPeerData session)

[<Fact>]
let ``a resume gives what was taken, the kept bytes from the client's count, the peer's end; then the session goes on`` () =
    let session, _ = connected standardSettings true false
    let session, _ = run session (at 1.0) [ sendb [| 1uy; 2uy; 3uy |]; WriteCompleted 1L; Received(1L, bytes "hello "); Received(1L, bytes "world") ]
    let session, _ = Session.step session (at 2.0) ClientLost
    let session, _ = run session (at 3.0) [ Received(1L, bytes "!"); PeerFinished 1L ]
    let session, effects = Session.step session (at 4.0) (ResumeAsked 3L)
    Assert.Equal(TakeClient, List.head effects)
    Assert.Equal(Reply(ResumeDone(3L, 9L)), effects[1])
    Assert.Equal("lo world!", data effects)
    Assert.Equal(Some(Reply(ClosedByPeer None)), effects |> List.tryFind (function Reply(ClosedByPeer _) -> true | _ -> false))
    Assert.Contains(Observe(Resumed 9L), effects)
    Assert.Equal(None, session.SuspendedAt)
    // The connection ended while the client was away: the session is idle and usable.
    Assert.Equal(Session.Idle, session.Phase)

[<Fact>]
let ``a shutdown sent again after a resume is done, even when the peer ended while the client was away`` () =
    let session, _ = connected standardSettings true false
    let session, _ = run session (at 1.0) [ ClientLost; PeerFinished 1L ]
    let session, _ = Session.step session (at 2.0) (ResumeAsked 0L)
    let _, effects = Session.step session (at 2.0) (frame """{"command":"shutdown"}""")
    Assert.Equal<Response list>([ Done "shutdown" ], replies effects)

[<Fact>]
let ``a resume that asks for bytes the session never sent changes nothing`` () =
    let session, _ = connected standardSettings true false
    let session, _ = run session (at 1.0) [ Received(1L, bytes "abc"); ClientLost ]
    let after, effects = Session.step session (at 2.0) (ResumeAsked 4L)
    Assert.Equal<Effect list>([ RefuseResume "the client has 4 bytes; the server keeps bytes 0 to 3" ], effects)
    Assert.Equal(session.SuspendedAt, after.SuspendedAt)
    Assert.Equal(Session.keptBytes session, Session.keptBytes after)

[<Fact>]
let ``a resume of a session that is not resumable is refused`` () =
    let session, _ = connected standardSettings false false
    let _, effects = Session.step session (at 1.0) (ResumeAsked 0L)
    Assert.Equal<Effect list>([ RefuseResume "no session holds this token" ], effects)

[<Fact>]
let ``a resume while the server still has the old client takes the session over from it`` () =
    let session, _ = connected standardSettings true true
    let session, _ = Session.step session (at 1.0) (Received(1L, bytes "xyz"))
    let _, effects = Session.step session (at 2.0) (ResumeAsked 1L)
    Assert.Equal(TakeClient, List.head effects)
    Assert.Equal("yz", data effects)
    Assert.True(effects |> List.exists (function ReplyBinary _ -> true | _ -> false)) // in the session's mode

[<Fact>]
let ``an ack lets go of what the client has had, even while the session is busy, and is answered in turn with what was taken`` () =
    let session, _ = connected standardSettings true false
    let session, _ = run session (at 1.0) [ Received(1L, bytes "0123456789"); sendb [| 9uy; 9uy |] ] // busy writing
    let session, effects = Session.step session (at 1.0) (ack 6L)
    Assert.Empty(replies effects) // queued behind the write
    Assert.Equal(4L, Session.keptBytes session) // but applied at once
    let _, effects = Session.step session (at 1.0) (WriteCompleted 1L)
    Assert.Equal<Response list>([ Done "sendb"; AckDone 2L ], replies effects)

[<Fact>]
let ``an ack beyond what was sent, or without a resumable connection, is code 7 and changes nothing; one below an earlier one acknowledges nothing new`` () =
    let session, _ = connected standardSettings true false
    let session, _ = run session (at 1.0) [ Received(1L, bytes "0123456789"); ack 5L ]
    let after, effects = Session.step session (at 1.0) (ack 11L)
    Assert.Equal<Response list>([ BadRequest "ack: received 11 is beyond the 10 bytes sent" ], replies effects)
    Assert.Equal(Session.keptBytes session, Session.keptBytes after)
    let after, effects = Session.step session (at 1.0) (ack 4L)
    Assert.Equal<Response list>([ AckDone 0L ], replies effects)
    Assert.Equal(5L, Session.keptBytes after)
    let plain, _ = connected standardSettings false false
    let _, effects = Session.step plain (at 1.0) (ack 0L)
    Assert.Equal<Response list>([ BadRequest "ack: the connection is not resumable" ], replies effects)

[<Fact>]
let ``starttls on a resumable connection is code 7: its answer could be lost and it cannot be repeated`` () =
    let session, _ = connected standardSettings true false
    let _, effects = Session.step session (at 1.0) (frame """{"command":"starttls"}""")
    Assert.Equal<Response list>([ BadRequest "starttls: not on a resumable connection" ], replies effects)

[<Fact>]
let ``a resume request hands the client over and reads nothing more meanwhile; refused, it is code 9 and the session stays usable`` () =
    let fresh = Session.start standardSettings t0
    let asking, effects = Session.step fresh t0 (frame """{"command":"resume","token":"i.secret","received":7}""")
    Assert.Equal<Effect list>([ HandOver(ResumeToken.Of "i.secret", 7L) ], effects)
    Assert.False(Session.acceptsRequest asking)
    let refused, effects = Session.step asking t0 (ResumeRefused "no session holds this token")
    Assert.Equal<Response list>([ ResumeFailed "no session holds this token" ], replies effects)
    Assert.Equal(Session.Idle, refused.Phase)
    let handed, effects = Session.step asking t0 ResumedElsewhere
    Assert.True(handed.Phase.IsEnded)
    Assert.Equal<Effect list>([ CloseClient(1000, "its WebSocket went on in the session it resumed") ], effects) // for the log: no WebSocket is left
    // A session with a connection cannot resume another.
    let open', _ = connected standardSettings false false
    let _, effects = Session.step open' t0 (frame """{"command":"resume","token":"i.secret","received":0}""")
    Assert.Equal<Response list>([ BadRequest "resume needs a session without a connection" ], replies effects)

[<Fact>]
let ``a session admitted past the limits to resume may only resume: anything else, or a refusal, ends it (1008)`` () =
    let settings = Session.onlyToResume standardSettings
    let _, effects = Session.step (Session.start settings t0) t0 (frame """{"command":"ping"}""")
    Assert.Contains(CloseClient(1008, "admitted past the session limits to resume a session: resume is all this WebSocket may ask"), effects)
    Assert.Empty(replies effects)
    let asking, effects = Session.step (Session.start settings t0) t0 (frame """{"command":"resume","token":"i.x","received":0}""")
    Assert.Equal<Effect list>([ HandOver(ResumeToken.Of "i.x", 0L) ], effects)
    let ended, effects = Session.step asking t0 (ResumeRefused "no session holds this token")
    Assert.True(ended.Phase.IsEnded)
    Assert.Equal<Response list>([ ResumeFailed "no session holds this token" ], replies effects)
    Assert.Contains(CloseClient(1008, "admitted past the session limits to resume a session: resume is all this WebSocket may ask"), effects)

[<Fact>]
let ``the token a client presents is never printed`` () =
    let token = ResumeToken.Of "i.AAAAsecretAAAA"
    Assert.DoesNotContain("secret", sprintf "%A" (Valid(Resume(token, 1L))))
    Assert.DoesNotContain("secret", string (HandOver(token, 1L)))
    Assert.DoesNotContain("secret", token.ToString())

[<Fact>]
let ``a suspended session whose queued close runs ends: it has nothing left to resume`` () =
    let session, _ = connected standardSettings true false
    let session, _ = run session (at 1.0) [ sendb [| 1uy |]; frame """{"command":"close"}"""; ClientLost ]
    Assert.NotEqual(None, session.SuspendedAt)
    let session, effects = Session.step session (at 2.0) (WriteCompleted 1L)
    Assert.True(session.Phase.IsEnded)
    Assert.Empty(replies effects)

// ---- No byte lost, none repeated: a client and its peer through drops and resumes at random moments ----

/// What happens next, chosen by the generator.
type Move =
    | PeerSends of byte[]
    | ClientSends of byte[]
    | WriteFinishes
    /// The network delivers this many of the server's messages in flight to the client.
    | Deliver of int
    /// This many of the client's messages in flight reach the server.
    | Arrive of int
    | Acknowledge
    /// The WebSocket drops: everything in flight either way is lost.
    | Drop
    /// The client comes back on a new WebSocket (if it dropped).
    | Return

let private genMove =
    let chunk = Gen.choose (1, 40) |> Gen.bind (fun n -> Gen.arrayOfLength n (Gen.choose (0, 255) |> Gen.map byte))
    Gen.frequency
        [ 5, Gen.map PeerSends chunk
          5, Gen.map ClientSends chunk
          4, Gen.constant WriteFinishes
          4, Gen.choose (0, 3) |> Gen.map Deliver
          4, Gen.choose (0, 3) |> Gen.map Arrive
          1, Gen.constant Acknowledge
          1, Gen.constant Drop
          2, Gen.constant Return ]

/// The client side: what it sent (its whole data stream, in order), what it has had from the peer, and its WebSocket.
type private Client =
    { mutable Stream: byte list // every byte it means to send, in order
      mutable Sent: int // bytes of `Stream` it has put on a WebSocket (from the last confirmed point)
      mutable Received: ResizeArray<byte>
      mutable ToServer: Input list // in flight to the server
      mutable ToClient: Effect list // in flight to the client
      mutable Away: bool }

[<Property(MaxTest = 400)>]
let ``no byte is lost and none repeated, either way, across drops and resumes at any moment`` (binary: bool) =
    Prop.forAll (Arb.fromGen (Gen.listOf genMove)) (fun moves ->
        let settings = settingsWith 30 256 // small: the peer waits for acknowledgements (flow control) within most runs
        let mutable session, _ = connected settings true binary
        let mutable now = t0
        let peerSent = ResizeArray<byte>()
        let peerGot = ResizeArray<byte>()
        let pendingPeer = Collections.Generic.Queue<byte[]>()
        let client = { Stream = []; Sent = 0; Received = ResizeArray(); ToServer = []; ToClient = []; Away = false }
        let step input =
            let s, effects = Session.step session now input
            session <- s
            for e in effects do
                match e with
                | Write(_, b) -> peerGot.AddRange(b.ToArray())
                | Reply _ | ReplyBinary _ -> client.ToClient <- client.ToClient @ [ (match e with ReplyBinary b -> ReplyBinary(ReadOnlyMemory(b.ToArray())) | e -> e) ]
                | _ -> ()
            effects
        let receive effect =
            match effect with
            | Reply(RecvData b) | ReplyBinary b -> client.Received.AddRange(b.ToArray())
            | _ -> ()
        let sendNext () =
            let stream = Array.ofList client.Stream
            if client.Sent < stream.Length && not client.Away then
                let chunk = stream[client.Sent ..]
                client.Sent <- stream.Length
                client.ToServer <- client.ToServer @ [ (if binary then ClientBinary(ReadOnlyMemory chunk) else sendb chunk) ]
        for move in moves do
            now <- now.PlusMilliseconds 100L
            match move with
            | PeerSends chunk -> pendingPeer.Enqueue chunk
            | ClientSends chunk ->
                client.Stream <- client.Stream @ List.ofArray chunk
                sendNext ()
            | WriteFinishes -> step (WriteCompleted 1L) |> ignore
            | Deliver n when not client.Away ->
                let now', later = List.splitAt (min n client.ToClient.Length) client.ToClient
                client.ToClient <- later
                now' |> List.iter receive
            | Arrive n when not client.Away ->
                for _ in 1 .. min n client.ToServer.Length do
                    if Session.acceptsRequest session then
                        let next = List.head client.ToServer
                        client.ToServer <- List.tail client.ToServer
                        step next |> ignore
            | Acknowledge when not client.Away -> client.ToServer <- client.ToServer @ [ ack (int64 client.Received.Count) ]
            | Drop when not client.Away ->
                client.ToServer <- []
                client.ToClient <- []
                client.Away <- true
                step ClientLost |> ignore
            | Return when client.Away ->
                let effects = step (ResumeAsked(int64 client.Received.Count))
                match effects with
                | TakeClient :: _ ->
                    client.Away <- false
                    let taken = client.ToClient |> List.pick (function Reply(ResumeDone(t, _)) -> Some t | _ -> None)
                    // Everything in flight now is the resume's: delivered at once (later moves may drop it again otherwise).
                    client.ToClient |> List.iter receive
                    client.ToClient <- []
                    client.Sent <- int taken
                    sendNext ()
                | _ -> failwithf "resume refused: %A" effects
            | _ -> ()
            // The peer's bytes are read whenever the session takes them.
            while pendingPeer.Count > 0 && Session.acceptsPeerData session do
                let chunk = pendingPeer.Dequeue()
                peerSent.AddRange chunk
                step (Received(1L, ReadOnlyMemory chunk)) |> ignore
        // In the end the client comes back if it is away, and everything in flight arrives.
        if client.Away then
            now <- now.PlusMilliseconds 100L
            let effects = step (ResumeAsked(int64 client.Received.Count))
            Assert.Equal(TakeClient, List.head effects)
            client.Away <- false
            let taken = client.ToClient |> List.pick (function Reply(ResumeDone(t, _)) -> Some t | _ -> None)
            client.Sent <- int taken
            sendNext ()
        let mutable rounds = 0
        while (client.ToServer.Length > 0 || client.ToClient.Length > 0 || pendingPeer.Count > 0 || (match session.Phase with Session.Busy(Session.Writing _, _) -> true | _ -> false)) && rounds < 10000 do
            rounds <- rounds + 1
            client.ToClient |> List.iter receive
            client.ToClient <- []
            if not (Session.acceptsPeerData session) then client.ToServer <- client.ToServer @ [ ack (int64 client.Received.Count) ]
            while pendingPeer.Count > 0 && Session.acceptsPeerData session do
                let chunk = pendingPeer.Dequeue()
                peerSent.AddRange chunk
                step (Received(1L, ReadOnlyMemory chunk)) |> ignore
            match session.Phase with
            | Session.Busy(Session.Writing _, _) -> step (WriteCompleted 1L) |> ignore
            | _ ->
                match client.ToServer with
                | next :: rest when Session.acceptsRequest session ->
                    client.ToServer <- rest
                    step next |> ignore
                | _ -> ()
        let clientSent = Array.ofList client.Stream
        let peerOk = peerGot.ToArray() = clientSent
        let clientOk = client.Received.ToArray() = peerSent.ToArray()
        (peerOk |> Prop.label $"the peer got {peerGot.Count} bytes, the client sent {clientSent.Length}")
        .&. (clientOk |> Prop.label $"the client got {client.Received.Count} bytes, the peer sent {peerSent.Count}"))
