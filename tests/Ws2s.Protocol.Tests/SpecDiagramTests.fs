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

/// Every code a response can carry, from the core's own union (a new case with a new code is seen here).
let responseCodes () =
    FSharpType.GetUnionCases typeof<Response>
    |> Array.map (fun case ->
        let fields =
            case.GetFields()
            |> Array.map (fun f -> if f.PropertyType = typeof<string> then box "" elif f.PropertyType.IsValueType then System.Activator.CreateInstance f.PropertyType else null)
        (FSharpValue.MakeUnion(case, fields) :?> Response).Code)
    |> Array.distinct

[<Fact>]
let ``the spec lists every response code`` () =
    let text = spec.Force()
    let codes = responseCodes ()
    Assert.True(codes.Length >= 10, sprintf "%A" codes)
    for code in codes do
        Assert.Contains($"| {code} |", text)
