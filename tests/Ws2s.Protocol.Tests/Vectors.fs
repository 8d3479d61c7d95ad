/// Reads spec/vectors/*.json: the conversations both test suites replay.
module Ws2s.Protocol.Tests.Vectors

open System
open System.IO
open System.Text
open System.Text.Json
open System.Text.Json.Nodes

type Step =
    | ClientText of string
    | ClientBinary of byte[]
    | Expect of JsonObject
    | ExpectRecv of byte[]
    | ExpectBinary of byte[]
    | ExpectClose of int

type Vector =
    { File: string
      Name: string
      AllowServerLocal: bool
      Steps: Step list }
    override this.ToString() = this.File

/// The repository root: the folder above the test binaries that holds Ws2s.sln.
let repositoryRoot =
    let rec up (dir: DirectoryInfo) =
        if isNull dir then None
        elif File.Exists(Path.Combine(dir.FullName, "Ws2s.sln")) then Some dir.FullName
        else up dir.Parent
    [ AppContext.BaseDirectory; Environment.CurrentDirectory ]
    |> List.tryPick (DirectoryInfo >> up)
    |> Option.defaultWith (fun () -> failwith "Ws2s.sln not found above the test binaries or the current folder")

/// Replaces `"$NAME"` port placeholders with the numbers the caller's world uses.
let private substitute (ports: Map<string, int>) (node: JsonObject) =
    let copy = node.DeepClone().AsObject()
    for KeyValue(key, value) in List.ofSeq copy do
        match value with
        | :? JsonValue as v when v.GetValueKind() = JsonValueKind.String && (v.GetValue<string>()).StartsWith "$" ->
            copy[key] <- JsonValue.Create(ports[v.GetValue<string>().Substring 1])
        | _ -> ()
    copy

let private parseStep ports (step: JsonObject) =
    let (KeyValue(kind, value)) = Seq.exactlyOne step
    match kind with
    | "client" when value.GetValueKind() = JsonValueKind.String -> ClientText(value.GetValue<string>())
    | "client" -> ClientText((substitute ports (value.AsObject())).ToJsonString())
    | "clientBinary" -> ClientBinary(Convert.FromBase64String(value.GetValue<string>()))
    | "expect" -> Expect(value.AsObject())
    | "expectRecv" -> ExpectRecv(Encoding.UTF8.GetBytes(value.GetValue<string>()))
    | "expectRecvBase64" -> ExpectRecv(Convert.FromBase64String(value.GetValue<string>()))
    | "expectBinary" -> ExpectBinary(Encoding.UTF8.GetBytes(value.GetValue<string>()))
    | "expectClose" -> ExpectClose(value.GetValue<int>())
    | other -> failwith $"unknown vector step '{other}'"

/// Every vector, with placeholders bound to `ports` (keys: ECHO, GREETER, REFUSED).
let load (ports: Map<string, int>) =
    Directory.GetFiles(Path.Combine(repositoryRoot, "spec", "vectors"), "*.json")
    |> Array.sort
    |> Array.map (fun path ->
        let root = JsonNode.Parse(File.ReadAllText path).AsObject()
        { File = Path.GetFileName path
          Name = root["name"].GetValue<string>()
          AllowServerLocal = root["allowConnectToServerLocal"].GetValue<bool>()
          Steps = [ for s in root["steps"].AsArray() -> parseStep ports (s.AsObject()) ] })
    |> List.ofArray

/// The greeter peer's words.
let greeting = Encoding.UTF8.GetBytes "hello from peer\n"

/// True when `actual` (a server message) has exactly the fields of `expected`, with equal values, in the same order; an
/// expected `"$TOKEN"` stands for any string (a resume token: random on the server, empty in the core, which never holds one).
let sameMessage (expected: JsonObject) (actual: string) =
    let actual = JsonNode.Parse(actual).AsObject()
    for KeyValue(key, value) in List.ofSeq expected do
        match value, actual[key] with
        | :? JsonValue as v, (:? JsonValue as a) when v.GetValueKind() = JsonValueKind.String && v.GetValue<string>() = "$TOKEN"
                                                   && a.GetValueKind() = JsonValueKind.String -> actual[key] <- JsonValue.Create "$TOKEN"
        | _ -> ()
    let keys (o: JsonObject) = [ for KeyValue(k, _) in o -> k ]
    keys expected = keys actual && JsonNode.DeepEquals(expected, actual)
