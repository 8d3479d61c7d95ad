/// Model-based test (FsCheck's state-machine testing): the core, driven by the simulated driver in a
/// calm world, against a reference model short enough to read as the spec.
module Ws2s.Protocol.Tests.ModelTests

open System
open System.Net
open System.Text
open FsCheck
open FsCheck.FSharp
open FsCheck.Experimental
open FsCheck.Xunit
open Ws2s.Protocol
open Ws2s.Protocol.Tests.Generators
open Ws2s.Protocol.Tests.Simulation

/// The reference model: is the session connected to the echo peer?
type Model =
    | NotConnected
    | ConnectedToEcho

/// Peers on a documentation address (RFC 5737), allowed by an address rule: this is a pure
/// simulation, nothing is dialled. Loopback stays refused, so code 4 is reachable too.
let private world =
    { Peers = Map [ 7001, Echo; 7002, Greeter Vectors.greeting; 7003, Refusing ]
      Names = Map [ "echo.example", [ IPAddress.Parse "192.0.2.10" ] ] }

let private settings =
    let documentation = Policy.parseRule "192.0.2.0/24" |> Result.toOption |> Option.get
    { standardSettings with Policy = { Policy.serverLocalOnly false with Allow = [ documentation ] } }

let private show (output: Output) =
    match output with
    | Text(RecvData _) | Binary _ -> None
    | Text r -> Some(sprintf "%d %s" r.Code r.Message)
    | ClientClosed status -> Some(sprintf "closed %d" status)

let private bytesOf (output: Output) =
    match output with
    | Text(RecvData b) -> b.ToArray()
    | Binary b -> b
    | _ -> [||]

/// The system under test: what the client saw after each frame, once the world settled.
type Actual() =
    let sim = Simulator(settings, world, 0, calm)
    let mutable checkedUpTo = 0
    member _.Do(frame: Input) =
        sim.Send frame
        sim.RunUntilQuiet()
        let fresh = [ for i in checkedUpTo .. sim.Outputs.Count - 1 -> sim.Outputs[i] ]
        checkedUpTo <- sim.Outputs.Count
        List.choose show fresh, Array.concat (List.map bytesOf fresh)
    override _.ToString() = sprintf "%A" sim.Session.Phase

let private frame (json: string) = ClientText(ReadOnlyMemory(Encoding.UTF8.GetBytes json))
let private illegal = "3 illegal socket status, please connect again"

/// One client action: its frame, the model after it, and what the client must see (given the model before).
let private action name (input: Input) (next: Model -> Model) (expect: Model -> string list * byte[]) =
    // FsCheck hands `Check` the model after `Run`, so the model before travels inside the model's history.
    { new Operation<Actual, Model * Model>() with
        override _.Run((_, current)) = current, next current
        override _.Check(actual, (before, _)) =
            let seen = actual.Do input
            let wanted = expect before
            (fst seen = fst wanted && snd seen = snd wanted)
            |> Prop.label (sprintf "%s: saw %A, expected %A" name seen wanted)
        override _.ToString() = name }

let private connectEcho binary =
    action $"connect echo (binary {binary})"
        (frame $"""{{"command":"connect","host":"192.0.2.10","port":7001,"binary":{(if binary then "true" else "false")}}}""")
        (fun _ -> ConnectedToEcho) (fun _ -> [ "0 connect done" ], [||])

let private otherConnects =
    [ action "connect refused" (frame """{"command":"connect","host":"192.0.2.10","port":7003}""")
          (fun _ -> NotConnected) (fun _ -> [ "2 connection refused" ], [||])
      action "connect greeter" (frame """{"command":"connect","host":"echo.example","port":7002}""")
          (fun _ -> NotConnected)
          (fun _ -> [ "0 connect done"; "5 connection closed by peer" ], Vectors.greeting)
      action "connect loopback" (frame """{"command":"connect","host":"127.0.0.1","port":7001}""")
          (fun _ -> NotConnected)
          (fun _ -> [ "4 ws2s refuse to connect target host: 127.0.0.1, cause that's a dangerous operation (loopback 127.0.0.0/8)" ], [||])
      action "connect unknown" (frame """{"command":"connect","host":"nowhere.invalid","port":7001}""")
          (fun _ -> NotConnected) (fun _ -> [ "2 host not found: nowhere.invalid" ], [||]) ]

let private send (text: string) =
    let bytes = Encoding.UTF8.GetBytes text
    action $"send {text}" (ClientText(ReadOnlyMemory((SendText text).Frame))) id (function
        | ConnectedToEcho -> [ "0 send done" ], bytes
        | NotConnected -> [ illegal ], [||])

let private sendb (bytes: byte[]) =
    action $"sendb {Convert.ToHexString bytes}" (ClientText(ReadOnlyMemory((SendBase64 bytes).Frame))) id (function
        | ConnectedToEcho -> [ "0 sendb done" ], bytes
        | NotConnected -> [ illegal ], [||])

let private binaryFrame (bytes: byte[]) =
    action $"binary frame {Convert.ToHexString bytes}" (ClientBinary(ReadOnlyMemory bytes)) id (function
        | ConnectedToEcho -> [], bytes
        | NotConnected -> [ illegal ], [||])

let private fixedActions =
    [ action "close" (frame """{"command":"close"}""") (fun _ -> NotConnected) (fun _ -> [ "0 close done" ], [||])
      action "ping" (frame """{"command":"ping"}""") id (fun _ -> [ "0 ping done" ], [||])
      // Half-close: the echo peer finishes once it has read everything, so the session ends with code 5.
      action "shutdown" (frame """{"command":"shutdown"}""") (fun _ -> NotConnected) (function
          | ConnectedToEcho -> [ "0 shutdown done"; "5 connection closed by peer" ], [||]
          | NotConnected -> [ illegal ], [||])
      action "garbage" (frame "{oops") id (fun _ -> [ "7 bad request: invalid JSON" ], [||]) ]

let private machine =
    { new Machine<Actual, Model * Model>() with
        override _.Setup =
            Gen.constant (StateMachine.setup (fun () -> Actual()) (fun () -> NotConnected, NotConnected)) |> Arb.fromGen
        override _.Next _ =
            Gen.frequency
                [ 2, Gen.elements [ connectEcho false; connectEcho true ]
                  2, Gen.elements otherConnects
                  4, genText |> Gen.map send
                  2, genBytes |> Gen.map sendb
                  2, genBytes |> Gen.map binaryFrame
                  2, Gen.elements fixedActions ] }

[<Property(MaxTest = 300)>]
let ``the session behaves like its reference model`` () = StateMachine.toProperty machine
