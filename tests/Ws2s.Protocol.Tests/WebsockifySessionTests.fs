/// The websockify endpoint's session: the ws2s session with answers turned into WebSocket closes.
module Ws2s.Protocol.Tests.WebsockifySessionTests

open System
open System.Net
open Xunit
open Ws2s.Protocol
open Ws2s.Protocol.Tests.Generators

let port = match Port.TryCreate 5901L with ValueSome p -> p | ValueNone -> failwith "port"

let closes effects = effects |> List.choose (function CloseClient(status, reason) -> Some(status, reason) | _ -> None)

[<Fact>]
let ``a websockify session dials its target at once, relays both ways and answers nothing`` () =
    let session, effects = WebsockifySession.start standardSettings t0 (TcpPeer(hostOf "127.0.0.1", port))
    Assert.Contains(Dial(1L, TcpHop(IPEndPoint(IPAddress.Loopback, 5901))), effects)
    let session, effects = WebsockifySession.step session t0 (Dialled 1L)
    // No "connect done" on this endpoint; only the runner's metrics hear of it.
    Assert.Equal<Effect list>([ Observe(ConnectAnswered(Some 0L, 0)) ], effects)
    let frame = ReadOnlyMemory "abc"B
    let session, effects = WebsockifySession.step session t0 (ClientBinary frame)
    Assert.Equal<Effect list>([ Write(1L, frame) ], effects)
    let session, effects = WebsockifySession.step session t0 (WriteCompleted 1L)
    Assert.Empty(effects)
    let received = ReadOnlyMemory "xyz"B
    let session, effects = WebsockifySession.step session t0 (Received(1L, received))
    Assert.Equal<Effect list>([ ReplyBinary received ], effects)
    let session, effects = WebsockifySession.step session t0 (PeerFinished 1L)
    Assert.Equal<(int * string) list>([ 1000, "the target closed the connection" ], closes effects)
    Assert.True(WebsockifySession.isEnded session)

[<Fact>]
let ``a text frame ends a websockify session with 1003 and closes its connection`` () =
    let session, _ = WebsockifySession.start standardSettings t0 (TcpPeer(hostOf "127.0.0.1", port))
    let session, _ = WebsockifySession.step session t0 (Dialled 1L)
    let session, effects = WebsockifySession.step session t0 (ClientText(ReadOnlyMemory """{"command":"ping"}"""B))
    Assert.Contains(CloseConnection 1L, effects)
    Assert.Equal(1003, closes effects |> List.exactlyOne |> fst)
    Assert.True(WebsockifySession.isEnded session)

[<Fact>]
let ``a refused or forbidden target closes with 1011 or 1008, saying why`` () =
    let session, _ = WebsockifySession.start standardSettings t0 (TcpPeer(hostOf "127.0.0.1", port))
    let _, effects = WebsockifySession.step session t0 (DialFailedWith(1L, ConnectionRefused))
    Assert.Equal<(int * string) list>([ 1011, "cannot reach the target: connection refused" ], closes effects)
    let strict = { standardSettings with Policy = Policy.serverLocalOnly false }
    let session, effects = WebsockifySession.start strict t0 (TcpPeer(hostOf "localhost", port))
    Assert.Equal<(int * string) list>([ 1008, "the target is refused by policy (loopback 127.0.0.0/8)" ], closes effects)
    Assert.True(WebsockifySession.isEnded session)

[<Fact>]
let ``an oversized or stalled client message ends a websockify session like a ws2s one, closing its connection`` () =
    // Stalled: a part of a message arrived at t0, and no more of it by the message timeout.
    let stalledAt = t0.PlusSeconds standardSettings.MessageTimeoutSeconds
    for inputs, status in [ [ t0, ClientMessageTooLarge 1024 ], 1009; [ t0, ClientMessageProgress; stalledAt, Wake ], 1008 ] do
        let session, _ = WebsockifySession.start standardSettings t0 (TcpPeer(hostOf "127.0.0.1", port))
        let session, _ = WebsockifySession.step session t0 (Dialled 1L)
        let session, effects = inputs |> List.fold (fun (session, _) (now, input) -> WebsockifySession.step session now input) (session, [])
        Assert.True(WebsockifySession.isEnded session)
        match effects with
        | [ CloseConnection 1L; CloseClient(s, _) ] -> Assert.Equal(status, s)
        | other -> failwithf "effects %A" other

[<Fact>]
let ``a websockify session's close carries the peer's words cut to what a close frame holds`` () =
    let session, _ = WebsockifySession.start standardSettings t0 (TcpPeer(hostOf "127.0.0.1", port))
    let _, effects = WebsockifySession.step session t0 (DialFailedWith(1L, DialFailed(String.replicate 40 "ünreachable ")))
    match effects |> List.tryPick (function CloseClient(status, reason) -> Some(status, reason) | _ -> None) with
    | Some(1011, reason) ->
        Assert.True(Text.Encoding.UTF8.GetByteCount reason <= 123, reason)
        Assert.StartsWith("cannot reach the target: ünreachable", reason)
        Assert.EndsWith("…", reason)
    | other -> failwithf "closed with %A" other
