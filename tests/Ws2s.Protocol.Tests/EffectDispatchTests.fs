/// `Effect.dispatch` is how every driver carries out the core's effects: each case must reach the handler
/// method of its own name, with its own fields.
module Ws2s.Protocol.Tests.EffectDispatchTests

open System
open Microsoft.FSharp.Reflection
open Xunit
open Ws2s.Protocol

/// A handler that answers with the name of the method called and what it was given.
type private Recorder() =
    interface IEffectHandler<string * obj list> with
        member _.Resolve(generation, name) = "Resolve", [ box generation; box name ]
        member _.Dial(generation, hop) = "Dial", [ box generation; box hop ]
        member _.SecureConnection(generation, serverName) = "SecureConnection", [ box generation; box serverName ]
        member _.Write(generation, bytes) = "Write", [ box generation; box bytes ]
        member _.CloseConnection generation = "CloseConnection", [ box generation ]
        member _.ShutdownConnection generation = "ShutdownConnection", [ box generation ]
        member _.Reply response = "Reply", [ box response ]
        member _.ReplyBinary bytes = "ReplyBinary", [ box bytes ]
        member _.ReplyWispData(stream, payload) = "ReplyWispData", [ box stream; box payload ]
        member _.CloseClient(status, reason) = "CloseClient", [ box status; box reason ]
        member _.Observe observation = "Observe", [ box observation ]
        member _.CheckCredentials credentials = "CheckCredentials", [ box credentials ]
        member _.HandOver(token, received) = "HandOver", [ box token; box received ]
        member _.TakeClient() = "TakeClient", []
        member _.RefuseResume reason = "RefuseResume", [ box reason ]

/// A value of any field type the effects carry, distinct per position so a swapped argument shows.
let rec private sample (position: int) (t: Type) : obj =
    if t = typeof<string> then box $"text{position}"
    elif t = typeof<ResumeToken> then box (ResumeToken.Of $"token{position}")
    elif t = typeof<int> then box (position + 1)
    elif t = typeof<int64> then box (int64 position + 100L)
    elif t = typeof<uint32> then box (uint32 position + 200u)
    elif t = typeof<ReadOnlyMemory<byte>> then box (ReadOnlyMemory<byte>(Array.create (position + 1) 7uy))
    elif t = typeof<System.Net.IPEndPoint> then box (System.Net.IPEndPoint(System.Net.IPAddress.Loopback, position + 1))
    elif t.IsGenericType && t.GetGenericTypeDefinition() = typedefof<option<_>> then null
    elif FSharpType.IsUnion t then
        let case = (FSharpType.GetUnionCases t)[0]
        FSharpValue.MakeUnion(case, case.GetFields() |> Array.mapi (fun i f -> sample i f.PropertyType))
    elif FSharpType.IsRecord t then
        FSharpValue.MakeRecord(t, FSharpType.GetRecordFields t |> Array.mapi (fun i f -> sample i f.PropertyType))
    elif FSharpType.IsTuple t then
        FSharpValue.MakeTuple(FSharpType.GetTupleElements t |> Array.mapi sample, t)
    elif t.IsValueType then Activator.CreateInstance t
    else failwithf "no sample for %s" t.FullName

[<Fact>]
let ``dispatch hands every effect to the method of its own case with its own fields`` () =
    for case in FSharpType.GetUnionCases typeof<Effect> do
        let fields = case.GetFields() |> Array.mapi (fun i f -> sample i f.PropertyType)
        let effect = FSharpValue.MakeUnion(case, fields) :?> Effect
        let called, given = Effect.dispatch (Recorder()) effect
        Assert.Equal(case.Name, called)
        Assert.Equal<obj list>(List.ofArray fields, given)
