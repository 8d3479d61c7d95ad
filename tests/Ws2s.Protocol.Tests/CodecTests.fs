module Ws2s.Protocol.Tests.CodecTests

open System
open System.Text
open System.Text.Json
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Ws2s.Protocol
open Ws2s.Protocol.Tests.Generators

/// A command as comparable data (memory compared by content).
let describe (request: Request) =
    match request with
    | Valid(Connect({ Destination = TcpPeer(host, port); Tls = Some _ } as t)) -> sprintf "connect tls %s %d %b" host.Written port.Value t.Binary
    | Valid(Connect({ Destination = TcpPeer(host, port) } as t)) -> sprintf "connect %s %d %b" host.Written port.Value t.Binary
    | Valid(Connect t) -> sprintf "connect %s %b" t.Destination.Text t.Binary
    | Valid(StartTls _) -> "starttls"
    | Valid(Send b) -> "send " + Convert.ToHexString(b.ToArray())
    | Valid(SendBytes b) -> "sendb " + Convert.ToHexString(b.ToArray())
    | Valid(Forward b) -> "forward " + Convert.ToHexString(b.ToArray())
    | Valid Close -> "close"
    | Valid Shutdown -> "shutdown"
    | Valid Ping -> "ping"
    | Valid(Ack received) -> sprintf "ack %d" received
    | Valid(Resume(_, received)) -> sprintf "resume %d" received
    | Rejected r -> sprintf "rejected %d %s" r.Code r.Message

let expected (spec: RequestSpec) =
    match spec with
    | ConnectTo(host, port, binary) -> sprintf "connect %s %d %b" host port binary
    | ConnectTls(host, port, binary) -> sprintf "connect tls %s %d %b" host port binary
    | StartTlsIt -> "starttls"
    | SendText text -> "send " + Convert.ToHexString(Encoding.UTF8.GetBytes text)
    | SendBase64 bytes -> "sendb " + Convert.ToHexString bytes
    | CloseIt -> "close"
    | ShutdownIt -> "shutdown"
    | PingIt -> "ping"

[<Property>]
let ``every request ws2s.js can send parses back to the command it meant`` () =
    Prop.forAll (Arb.fromGen (genRequest genDestination)) (fun spec ->
        describe (Codec.parseRequest (ReadOnlySpan spec.Frame)) = expected spec)

[<Property(MaxTest = 2000)>]
let ``every malformed request is rejected with code 7 and a message for a person`` () =
    Prop.forAll (Arb.fromGen genMalformed) (fun frame ->
        match Codec.parseRequest (ReadOnlySpan frame) with
        | Rejected(BadRequest reason as r) ->
            r.Code = 7 && r.Message.StartsWith "bad request: " && reason.Length > 0
            && not (reason.Contains "Exception") && not (reason.Contains "   at ")
        | other -> failwithf "accepted a malformed frame %A as %s" (Encoding.UTF8.GetString frame) (describe other))

[<Property>]
let ``arbitrary bytes never make the codec throw`` (bytes: byte[]) =
    let bytes = if isNull bytes then [||] else bytes
    Codec.parseRequest (ReadOnlySpan bytes) |> ignore
    true

let genResponse =
    Gen.oneof
        [ Gen.elements [ "connect"; "send"; "sendb"; "close"; "ping" ] |> Gen.map Done
          genBytes |> Gen.map (fun b -> RecvData(ReadOnlyMemory b))
          genText |> Gen.map Unexpected
          genText |> Gen.map ConnectFailed
          Gen.constant IllegalSocketState
          Gen.map2 (fun h r -> Forbidden(h, r)) genText genText
          genText |> Gen.map (fun t -> ClosedByPeer(if t = "" then None else Some t))
          genText |> Gen.map SshFailed
          genText |> Gen.map BadRequest ]

[<Property>]
let ``responses are JSON objects with success, code, message and data in that order`` () =
    Prop.forAll (Arb.fromGen genResponse) (fun response ->
        use doc = JsonDocument.Parse(Codec.responseBytes response)
        let fields = [ for p in doc.RootElement.EnumerateObject() -> p.Name ]
        let root = doc.RootElement
        let dataOk =
            match response with
            | RecvData bytes ->
                fields = [ "success"; "code"; "message"; "data" ]
                && root.GetProperty("data").GetBytesFromBase64() = bytes.ToArray()
            | _ -> fields = [ "success"; "code"; "message" ]
        dataOk
        && root.GetProperty("success").GetBoolean() = response.Success
        && root.GetProperty("code").GetInt32() = response.Code
        && root.GetProperty("message").GetString() = response.Message)

[<Fact>]
let ``the messages ws2s.js keys off are exact`` () =
    let text r = Encoding.UTF8.GetString(Codec.responseBytes r)
    Assert.Equal("""{"success":true,"code":0,"message":"connect done"}""", text (Done "connect"))
    Assert.Equal("""{"success":true,"code":0,"message":"close done"}""", text (Done "close"))
    Assert.Equal("""{"success":true,"code":-1,"message":"recv data","data":"aGk="}""", text (RecvData(ReadOnlyMemory "hi"B)))
    Assert.Equal("""{"success":false,"code":5,"message":"connection closed by peer"}""", text (ClosedByPeer None))
    Assert.Equal(
        """{"success":false,"code":4,"message":"ws2s refuse to connect target host: h, cause that's a dangerous operation (loopback 127.0.0.0/8)"}""",
        text (Forbidden("h", "loopback 127.0.0.0/8")))
