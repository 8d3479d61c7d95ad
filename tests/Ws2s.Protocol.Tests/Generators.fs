/// FsCheck generators: valid requests, targeted corruptions of them, and client scripts.
module Ws2s.Protocol.Tests.Generators

open System
open System.Text
open System.Text.Json.Nodes
open FsCheck
open FsCheck.FSharp
open Ws2s.Protocol

/// The moment tests that do not care about time run at.
let t0 = Instant.Zero

let private obj (fields: (string * JsonNode) list) =
    let o = JsonObject()
    for k, v in fields do
        o[k] <- v
    o

let private str (s: string) : JsonNode = JsonValue.Create s
let private num (n: int64) : JsonNode = JsonValue.Create n

/// A client request as its JSON object, built the way ws2s.js builds it.
type RequestSpec =
    | ConnectTo of host: string * port: int * binary: bool
    /// `connect` with `"tls": true`.
    | ConnectTls of host: string * port: int * binary: bool
    | StartTlsIt
    | SendText of string
    | SendBase64 of byte[]
    | CloseIt
    | ShutdownIt
    | PingIt
    member this.Json =
        match this with
        | ConnectTo(host, port, binary) ->
            let o = obj [ "command", str "connect"; "host", str host; "port", num (int64 port) ]
            if binary then o["binary"] <- JsonValue.Create true
            o
        | ConnectTls(host, port, binary) ->
            let o = obj [ "command", str "connect"; "host", str host; "port", num (int64 port); "tls", JsonValue.Create true ]
            if binary then o["binary"] <- JsonValue.Create true
            o
        | StartTlsIt -> obj [ "command", str "starttls" ]
        | SendText text -> obj [ "command", str "send"; "data", str text ]
        | SendBase64 bytes -> obj [ "command", str "sendb"; "data", str (Convert.ToBase64String bytes) ]
        | CloseIt -> obj [ "command", str "close" ]
        | ShutdownIt -> obj [ "command", str "shutdown" ]
        | PingIt -> obj [ "command", str "ping" ]
    member this.Frame = Encoding.UTF8.GetBytes(this.Json.ToJsonString())
    member this.Name =
        match this with
        | ConnectTo _ | ConnectTls _ -> "connect"
        | StartTlsIt -> "starttls"
        | SendText _ -> "send"
        | SendBase64 _ -> "sendb"
        | CloseIt -> "close"
        | ShutdownIt -> "shutdown"
        | PingIt -> "ping"

/// Text without lone surrogates (what a browser's JSON.stringify of a JS string can carry as valid UTF-8).
let genText =
    Gen.oneof
        [ ArbMap.defaults |> ArbMap.generate<string> |> Gen.map (fun s -> if isNull s then "" else s)
          Gen.elements [ ""; "hello"; "héllo ✓ 𝄞"; "line\r\nbreak"; "quote \" and \\ slash"; "\u0000nul" ] ]
    |> Gen.map (fun s -> String(s.ToCharArray() |> Array.filter (fun c -> not (Char.IsSurrogate c))))

let genBytes =
    Gen.oneof
        [ ArbMap.defaults |> ArbMap.generate<byte[]> |> Gen.map (fun b -> if isNull b then [||] else b)
          Gen.constant [| 0uy; 255uy; 128uy; 10uy; 13uy |] ]

/// Destinations in the standard simulated world (see Simulation.ports).
let genDestination =
    Gen.elements
        [ "127.0.0.1", 7001 // echo
          "localhost", 7001 // echo through the special-use name
          "127.0.0.1", 7003 // refused
          "127.0.0.1", 7004 // silent: times out
          "nowhere.invalid", 7001 ] // not found

let genRequest (destination: Gen<string * int>) =
    Gen.frequency
        [ 2, gen {
              let! host, port = destination
              let! binary = Gen.frequency [ 4, Gen.constant false; 1, Gen.constant true ]
              return ConnectTo(host, port, binary)
          }
          1, gen {
              let! host, port = destination
              let! binary = Gen.frequency [ 4, Gen.constant false; 1, Gen.constant true ]
              return ConnectTls(host, port, binary)
          }
          1, Gen.constant StartTlsIt
          4, Gen.map SendText genText
          2, Gen.map SendBase64 genBytes
          1, Gen.constant CloseIt
          1, Gen.constant ShutdownIt
          1, Gen.constant PingIt ]

/// Malformed frames, each built from a valid request by one corruption. Every one must be code 7.
let genMalformed =
    let valid = genRequest (Gen.constant ("127.0.0.1", 7001))
    let wrongTypes key : JsonNode list =
        [ JsonValue.Create true; JsonArray(); JsonObject(); JsonValue.Create 1.5; null ]
        @ (if key = "port" then [ JsonValue.Create "7001" ] else [ JsonValue.Create 7001 ])
    let utf8 (s: string) = Encoding.UTF8.GetBytes s
    Gen.oneof
        [ // a required field missing
          gen {
              let! request = valid |> Gen.filter (fun r -> r.Json.Count > 1)
              let o = request.Json
              let! key = Gen.elements [ for KeyValue(k, _) in o do if k <> "binary" && k <> "tls" then yield k ]
              o.Remove key |> ignore
              return utf8 (o.ToJsonString())
          }
          // a field of the wrong type
          gen {
              let! request = valid
              let o = request.Json
              let! key = Gen.elements [ for KeyValue(k, _) in o do if k <> "binary" && k <> "tls" then yield k ]
              let! replacement = Gen.elements (wrongTypes key)
              o[key] <- if isNull replacement then null else replacement.DeepClone()
              return utf8 (o.ToJsonString())
          }
          // a port out of range or not an integer
          gen {
              let! port = Gen.elements [ "0"; "-1"; "65536"; "99999999999999999999"; "1e3"; "80.0"; "\"80\""; "null" ]
              return utf8 $"{{\"command\":\"connect\",\"host\":\"127.0.0.1\",\"port\":{port}}}"
          }
          // base64 that is not
          gen {
              let! data = Gen.elements [ "%%%"; "abc"; "a===" ; "ab$d"; "AAAA=AAA" ]
              return utf8 $"{{\"command\":\"sendb\",\"data\":\"{data}\"}}"
          }
          // an unknown command
          gen {
              let! name = genText |> Gen.filter (fun s -> not (List.contains s [ "connect"; "send"; "sendb"; "close"; "shutdown"; "ping"; "starttls" ]))
              return utf8 ((obj [ "command", str name ]).ToJsonString())
          }
          // not an object
          Gen.elements [ "[]"; "\"connect\""; "42"; "null"; "true"; "" ] |> Gen.map utf8
          // cut short
          gen {
              let! request = valid
              let frame = request.Frame
              let! length = Gen.choose (0, frame.Length - 1)
              return frame[.. length - 1]
          }
          // an invalid UTF-8 byte inside the JSON
          gen {
              let! request = valid
              let frame = request.Frame
              let! at = Gen.choose (1, frame.Length - 1)
              let! bad = Gen.elements [ 0xFFuy; 0xC0uy; 0x80uy; 0xFEuy ]
              return Array.concat [ frame[.. at - 1]; [| bad |]; frame[at..] ]
          }
          // nesting deeper than any request needs
          gen {
              let! depth = Gen.choose (17, 2000)
              return utf8 ("{\"command\":\"ping\",\"x\":" + String('[', depth) + String(']', depth) + "}")
          }
          // a field twice
          Gen.elements [ "{\"command\":\"ping\",\"command\":\"ping\"}"; "{\"command\":\"send\",\"data\":\"a\",\"data\":\"b\"}" ]
          |> Gen.map utf8 ]

/// A client's script: mostly requests, some binary frames, some malformed frames.
let genScript destination =
    Gen.frequency
        [ 8, genRequest destination |> Gen.map (fun r -> ClientText(ReadOnlyMemory r.Frame))
          1, genBytes |> Gen.map (fun b -> ClientBinary(ReadOnlyMemory b))
          1, genMalformed |> Gen.map (fun f -> ClientText(ReadOnlyMemory f)) ]
    |> Gen.listOf

/// Scripts of JSON requests only (each answered exactly once), for ordering and equivalence properties.
let genRequests destination = genRequest destination |> Gen.listOf

/// The defaults, but loopback allowed (the simulated peers live there) and no connect rate limit
/// (simulations run many connects with no clock ticking).
let standardSettings =
    { Session.defaultSettings with Policy = Policy.serverLocalOnly true; MaxConnectsPerSecond = 0 }

/// A host that must parse (test data).
let hostOf text =
    match HostName.parse text with
    | Ok host -> host
    | Error e -> failwith e
