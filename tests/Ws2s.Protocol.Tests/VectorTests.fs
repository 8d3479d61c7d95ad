/// spec/vectors replayed against the core through the simulation, under several schedules.
module Ws2s.Protocol.Tests.VectorTests

open System
open System.Text
open Xunit
open Ws2s.Protocol
open Ws2s.Protocol.Tests.Vectors
open Ws2s.Protocol.Tests.Simulation
open Ws2s.Protocol.Tests.Generators

let vectors = load ports |> List.map (fun v -> [| box v |])

let replay seed (vector: Vector) =
    let settings = { standardSettings with Policy = Policy.serverLocalOnly vector.AllowServerLocal }
    let sim = Simulator(settings, standardWorld, seed, { calm with MaxChunk = 4 })
    let mutable next = 0 // outputs consumed
    let recv = ResizeArray<byte>()
    let binary = ResizeArray<byte>()
    let closes = ResizeArray<int>()
    let messages = Collections.Generic.Queue<Response>()
    /// Sort fresh outputs into their queues; run the world one event at a time until `ready` holds.
    let until ready what =
        let mutable progressing = true
        while not (ready ()) && progressing do
            progressing <- sim.RunOne()
            while next < sim.Outputs.Count do
                match sim.Outputs[next] with
                | Text(RecvData b) -> recv.AddRange(b.ToArray())
                | Text r -> messages.Enqueue r
                | Binary b -> binary.AddRange b
                | ClientClosed status -> closes.Add status
                next <- next + 1
        if not (ready ()) then failwithf "%s (seed %d): the session went quiet while waiting for %s" vector.File seed what
    for step in vector.Steps do
        match step with
        | ClientText text -> sim.Send(Input.ClientText(ReadOnlyMemory(Encoding.UTF8.GetBytes text)))
        | ClientBinary bytes -> sim.Send(Input.ClientBinary(ReadOnlyMemory bytes))
        | Expect expected ->
            until (fun () -> messages.Count > 0) (expected.ToJsonString())
            let actual = Encoding.UTF8.GetString(Codec.responseBytes (messages.Dequeue()))
            Assert.True(sameMessage expected actual, $"{vector.File}: expected {expected.ToJsonString()}, got {actual}")
        | ExpectRecv bytes ->
            until (fun () -> recv.Count >= bytes.Length) $"{bytes.Length} bytes of recv data"
            Assert.Equal<byte[]>(bytes, recv.ToArray())
            recv.Clear()
        | ExpectBinary bytes ->
            until (fun () -> binary.Count >= bytes.Length) $"{bytes.Length} bytes in binary frames"
            Assert.Equal<byte[]>(bytes, binary.ToArray())
            binary.Clear()
        | ExpectClose status ->
            until (fun () -> closes.Count > 0) $"close {status}"
            Assert.Equal(status, closes[0])

[<Theory>]
[<MemberData(nameof vectors)>]
let ``the core follows the vector under many schedules`` (vector: Vector) =
    for seed in 0..199 do
        replay seed vector
