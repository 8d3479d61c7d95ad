/// Thousands of simulated sessions under chaos: random scheduling, chunking, resets and late
/// events of closed sockets. The invariants must hold in every run.
module Ws2s.Protocol.Tests.SimulationTests

open System
open Xunit
open FsCheck
open FsCheck.FSharp
open Ws2s.Protocol
open Ws2s.Protocol.Tests.Generators
open Ws2s.Protocol.Tests.Simulation
open Ws2s.Protocol.Tests.SessionProperties

let chaos = { ResetChance = 0.03; LateEventChance = 0.5; MaxChunk = 5 }

let private isPrefix (prefix: byte[]) (whole: byte[]) =
    prefix.Length <= whole.Length && ReadOnlySpan(whole, 0, prefix.Length).SequenceEqual(ReadOnlySpan prefix)

/// Runs one seeded session and returns the first broken invariant, if any.
let check seed (requests: RequestSpec list) =
    let sim = run seed chaos requests
    let answers = answers sim.Outputs
    let liveAt (t: Transition) = Session.liveConnection t.Before.Phase |> Option.map _.Generation
    let generationOf input =
        match input with
        | Resolved(g, _) | ResolveFailed g | Dialled g | DialFailedWith(g, _) | Received(g, _) | Secured(g, _) | SecureFailed(g, _)
        | PeerFinished g | SocketFailed(g, _) | WriteCompleted g -> Some g
        | ClientText _ | ClientBinary _ | ClientGone | ClientLost | ClientMessageTooLarge _ | ClientMessageProgress | ServerStopping | RunnerFault _ | Wake
        | CredentialsAccepted _ | CredentialsRefused _ | ResumeAsked _ | ResumeRefused _ | ResumedElsewhere -> None
    [ if List.length answers <> List.length requests then
          yield sprintf "%d answers for %d requests" answers.Length requests.Length
      elif not (List.forall2 answersRequest requests answers) then
          yield sprintf "answers out of order: %A" answers
      for t in sim.Transitions do
          match generationOf t.Input with
          | Some g when liveAt t <> Some g && not t.Effects.IsEmpty ->
              yield sprintf "stale event %A had effects %A" t.Input t.Effects
          | _ -> ()
      for g in sim.Generations do
          // Echo peers: what reached the client is what was written, in order, possibly cut short by a close or reset.
          if not (isPrefix (sim.Relayed g) (sim.Written g)) then
              yield sprintf "generation %d relayed bytes that were not written in that order" g ]
    |> List.tryHead

[<Fact>]
let ``ten thousand chaotic sessions keep order, lose no byte and ignore stale events`` () =
    let requests = Gen.sample 10_000 (Gen.resize 30 (genRequests genDestination))
    let failures =
        requests
        |> Seq.mapi (fun seed script -> seed, check seed script)
        |> Seq.choose (fun (seed, failure) -> failure |> Option.map (fun f -> seed, f))
        |> Seq.truncate 3
        |> List.ofSeq
    Assert.True(failures.IsEmpty, sprintf "%A" failures)

[<Fact>]
let ``a session whose connection stays open relays every byte the peer echoed`` () =
    for seed in 0..999 do
        let payloads = [ for i in 0..20 -> SendText(String('x', seed % 50 + i)) ]
        let sim = run seed { calm with MaxChunk = 3 } (ConnectTo("127.0.0.1", 7001, false) :: payloads)
        let g = sim.Generations |> List.exactlyOne
        Assert.Equal<byte[]>(sim.Written g, sim.Relayed g)
