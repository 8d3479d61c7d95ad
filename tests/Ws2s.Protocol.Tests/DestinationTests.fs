/// Destinations that are not host names: Unix sockets (`unix:/path`) and named peers (`scheme:name`),
/// reachable only when `destinations.allow` lists them exactly.
module Ws2s.Protocol.Tests.DestinationTests

open System
open System.Text
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Ws2s.Protocol
open Ws2s.Protocol.Addresses
open Ws2s.Protocol.Policy

let private rule text =
    match parseRule text with
    | Ok r -> r
    | Error e -> failwith e

let private settingsWith allow deny serverLocal =
    { Session.defaultSettings with
        Policy = { serverLocalOnly serverLocal with Allow = List.map rule allow; Deny = List.map rule deny }
        MaxConnectsPerSecond = 0 }

let private frame (json: string) = ClientText(ReadOnlyMemory(Encoding.UTF8.GetBytes json))

let private connectTo (host: string) =
    frame (Text.Json.JsonSerializer.Serialize {| command = "connect"; host = host |})

/// The Unix path a connect dialled, if it dialled one.
let private dialledPath effects =
    effects |> List.tryPick (function Dial(_, UnixHop path) -> Some path | _ -> None)

let private codes effects =
    effects |> List.choose (function Reply r -> Some r.Code | _ -> None)

/// Plain absolute paths: one to five segments of letters, digits, '.', '-' and '_' (never '.' or '..' alone).
let private genPath =
    let segment =
        Gen.elements [ "run"; "tmp"; "app.sock"; "r.sock"; "vnc"; "A"; "a"; "x-1"; "_s"; "..."; ".hidden"; "sock." ]
    Gen.listOfLength 3 segment |> Gen.map (fun parts -> "/" + String.Join("/", parts))

/// Spellings of another path built from `path`: walks, dots, slashes, other cases, NUL, prefixes and suffixes.
let private genSpelling (path: string) =
    let name = path.Substring(path.LastIndexOf '/' + 1)
    let folder = path.Substring(0, path.LastIndexOf '/')
    Gen.elements
        [ path + "/"; folder + "/./" + name; folder + "//" + name; folder + "/x/../" + name; "/.." + path
          path.TrimStart '/'; "." + path; path.ToUpperInvariant(); path.ToLowerInvariant(); path + "\u0000"
          path + "\u0000.evil"; path + "x"; path.Substring(0, path.Length - 1); "/" + path; path + " "; " " + path
          folder + "/" + name.ToUpperInvariant(); path.Replace("/", "\\"); "~" + path; path + "/."; path + "/.."
          path; path.Normalize(NormalizationForm.FormD) ]

[<Property(MaxTest = 2000)>]
let ``no path other than the one listed exactly is ever reachable`` () =
    let gen = gen {
        let! listed = genPath
        let! asked = genSpelling listed
        let! serverLocal = Gen.elements [ true; false ]
        return listed, asked, serverLocal }
    Prop.forAll (Arb.fromGen gen) (fun (listed, asked, serverLocal) ->
        let settings = settingsWith [ "unix:" + listed; "0.0.0.0/0"; "::/0" ] [] serverLocal
        let _, effects = Session.step (Session.start settings Instant.Zero) Instant.Zero (connectTo ("unix:" + asked))
        match dialledPath effects with
        | Some path -> path = listed && asked = listed
        | None -> asked <> listed && (codes effects = [ 4 ] || codes effects = [ 7 ]))

[<Property(MaxTest = 500)>]
let ``a Unix socket is never reachable without a rule naming it, whatever else is allowed`` () =
    let gen = gen {
        let! path = genPath
        let! serverLocal = Gen.elements [ true; false ]
        let! allow = Gen.subListOf [ "0.0.0.0/0"; "::/0"; "localhost"; "*.sock"; "unix:/run/other.sock"; "mem:x" ]
        return path, serverLocal, allow }
    Prop.forAll (Arb.fromGen gen) (fun (path, serverLocal, allow) ->
        let _, effects = Session.step (Session.start (settingsWith allow [] serverLocal) Instant.Zero) Instant.Zero (connectTo ("unix:" + path))
        dialledPath effects = None && codes effects = [ 4 ])

[<Property(MaxTest = 500)>]
let ``a deny rule or a scope without the path refuses it even when it is listed`` () =
    Prop.forAll (Arb.fromGen genPath) (fun path ->
        let listed = "unix:" + path
        let denied = settingsWith [ listed ] [ listed ] false
        let scoped = Session.narrowTo [ rule "127.0.0.1:6379" ] (settingsWith [ listed ] [] false)
        let inScope = Session.narrowTo [ rule listed ] (settingsWith [ listed ] [] false)
        let refusedBy settings = Session.step (Session.start settings Instant.Zero) Instant.Zero (connectTo listed) |> snd
        dialledPath (refusedBy denied) = None
        && dialledPath (refusedBy scoped) = None
        && dialledPath (refusedBy inScope) = Some path)

[<Fact>]
let ``the refusal names the key and the rule that would allow it`` () =
    let _, effects = Session.step (Session.start (settingsWith [] [] true) Instant.Zero) Instant.Zero (connectTo "unix:/run/app.sock")
    Assert.Contains(
        Reply(Forbidden("unix:/run/app.sock", "a Unix socket is reachable only when destinations.allow lists it exactly: add \"unix:/run/app.sock\" to allow it")),
        effects)

[<Fact>]
let ``a listed path is dialled under the connect timeout, and connects like any peer`` () =
    let settings = settingsWith [ "unix:/run/app.sock" ] [] false
    let session, effects = Session.step (Session.start settings Instant.Zero) Instant.Zero (connectTo "unix:/run/app.sock")
    Assert.Equal<Effect list>([ Dial(1L, UnixHop "/run/app.sock") ], effects)
    Assert.Equal(Some(Instant.Zero.PlusSeconds 10), Session.nextDeadline session)
    let session, effects = Session.step session Instant.Zero (Dialled 1L)
    Assert.Equal<Effect list>([ Reply(Done "connect"); Observe(ConnectAnswered(Some 0L, 0)) ], effects)
    // starttls needs a name: a Unix socket has no host name to check a certificate against.
    let _, effects = Session.step session Instant.Zero (frame """{"command":"starttls"}""")
    Assert.Equal<int list>([ 7 ], codes effects)

[<Fact>]
let ``a reload that removes the rule refuses the next connect`` () =
    let listed = settingsWith [ "unix:/run/app.sock" ] [] false
    let session, _ = Session.step (Session.start listed Instant.Zero) Instant.Zero (connectTo "unix:/run/app.sock")
    let session, _ = Session.step session Instant.Zero (Dialled 1L)
    let session = Session.reconfigure (settingsWith [] [] false) session
    let _, effects = Session.step session Instant.Zero (connectTo "unix:/run/app.sock")
    Assert.Equal<int list>([ 4 ], codes effects)
    Assert.Equal(None, dialledPath effects)

[<Fact>]
let ``a named peer is dialled through its scheme only when listed exactly`` () =
    let settings = settingsWith [ "mem:pipe1" ] [] true
    let _, effects = Session.step (Session.start settings Instant.Zero) Instant.Zero (connectTo "mem:pipe1")
    Assert.Contains(Dial(1L, NamedHop("mem", "pipe1")), effects)
    let _, effects = Session.step (Session.start settings Instant.Zero) Instant.Zero (connectTo "mem:pipe2")
    Assert.Equal<int list>([ 4 ], codes effects)

[<Theory>]
[<InlineData("""{"command":"connect","host":"unix:/run/a.sock","port":6379}""", "a unix: host takes no port")>]
[<InlineData("""{"command":"connect","host":"unix:run/a.sock"}""", "plain absolute path")>]
[<InlineData("""{"command":"connect","host":"unix:/run/../a.sock"}""", "plain absolute path")>]
[<InlineData("""{"command":"connect","host":"unix:/run/a.sock\u0000x"}""", "NUL")>]
[<InlineData("""{"command":"connect","host":"unix:/run/a.sock","tls":true}""", "needs tlsServerName")>]
[<InlineData("""{"command":"connect","host":"unix:/run/a.sock","ssh_host":"b.example","ssh_username":"u","ssh_password":"p"}""", "SSH tunnel")>]
[<InlineData("""{"command":"connect","host":"localhost:6379"}""", "write the port in \"port\"")>]
[<InlineData("""{"command":"connect","host":"example.com","port":null}""", "missing field 'port'")>]
let ``malformed unix: and named hosts are bad requests in words`` (json: string, words: string) =
    match Codec.parseRequest (ReadOnlySpan(Encoding.UTF8.GetBytes json)) with
    | Rejected(BadRequest reason) -> Assert.Contains(words, reason)
    | other -> failwithf "parsed as %A" other

[<Fact>]
let ``a unix: host with a null port (as ws2s.js 2.1.4 may send) and tls with a server name parse`` () =
    match Codec.parseRequest (ReadOnlySpan(Encoding.UTF8.GetBytes """{"command":"connect","host":"unix:/run/a.sock","port":null,"tls":true,"tlsServerName":"a.test"}""")) with
    | Valid(Connect { Destination = UnixPeer "/run/a.sock"; Tls = Some { ServerName = name } }) -> Assert.Equal("a.test", name.Canonical)
    | other -> failwithf "parsed as %A" other

[<Theory>]
[<InlineData("unix:/run/app.sock")>]
[<InlineData("mem:pipe1")>]
let ``peer rules parse to exactly their destination`` (text: string) =
    match (rule text).Pattern with
    | Exactly destination -> Assert.Equal(text, destination.Text)
    | other -> failwithf "parsed as %A" other

[<Theory>]
[<InlineData("unix:relative.sock")>]
[<InlineData("unix:/run/../etc/x")>]
[<InlineData("unix:/run/app.sock/")>]
[<InlineData("unix:")>]
let ``a unix: rule that is not a plain absolute path is a config error`` (text: string) =
    Assert.True((parseRule text).IsError)

[<Theory>]
[<InlineData("redis.internal:6379")>]
[<InlineData("localhost:6379")>]
[<InlineData("fd00::/8")>]
[<InlineData("[fd00::]/8:443")>]
let ``host:port rules keep their meaning`` (text: string) =
    match (rule text).Pattern with
    | Exactly _ -> failwith "taken for a named peer"
    | _ -> ()

[<Fact>]
let ``the schemes of ws2s's own hops are never a named peer's, in a rule or a connect`` () =
    // A listed `tcp:db` once became NamedHop("tcp", "db"), handed to the TCP connector (code 1, close 1011).
    for scheme in Destinations.reservedSchemes |> Set.remove "unix" do
        Assert.True((parseRule $"{scheme}:db").IsError, scheme)
        let _, effects = Session.step (Session.start (settingsWith [] [] true) Instant.Zero) Instant.Zero (connectTo $"{scheme}:db")
        Assert.Equal<int list>([ 7 ], codes effects)
        Assert.Empty(effects |> List.filter (function Dial _ -> true | _ -> false))
