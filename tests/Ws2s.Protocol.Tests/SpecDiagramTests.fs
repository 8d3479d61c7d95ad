/// spec/protocol.md must name every state and every input of the core, so the picture cannot
/// silently drift from the code (h11 renders its diagram from its table for the same reason).
module Ws2s.Protocol.Tests.SpecDiagramTests

open System.IO
open Microsoft.FSharp.Reflection
open Xunit
open Ws2s.Protocol
open Ws2s.Protocol.Tests.Vectors

let spec = lazy File.ReadAllText(Path.Combine(repositoryRoot, "spec", "protocol.md"))

let caseNames<'T> () = FSharpType.GetUnionCases typeof<'T> |> Array.map _.Name

[<Fact>]
let ``the spec's transition table names every state and every input`` () =
    let text = spec.Force()
    let missing =
        [ yield! caseNames<Session.Phase> () |> Seq.filter (fun n -> n <> "Busy")
          yield! caseNames<Session.Awaiting> ()
          yield! caseNames<Input> ()
          yield! caseNames<Effect> () ]
        |> List.filter (fun name -> not (text.Contains("`" + name)))
    Assert.True(missing.IsEmpty, sprintf "spec/protocol.md does not mention: %A" missing)

[<Fact>]
let ``the spec lists every response code`` () =
    let text = spec.Force()
    for code in [ -1; 0; 1; 2; 3; 4; 5; 6; 7 ] do
        Assert.Contains($"| {code} |", text)
