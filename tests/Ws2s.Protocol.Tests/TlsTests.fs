/// TLS to destinations in the core: which pins a certificate must match (also by the names it
/// presents), `tls.required` for SSH tunnels, and handshake timeouts (code 2).
module Ws2s.Protocol.Tests.TlsTests

open System
open System.Net
open System.Text
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Ws2s.Protocol
open Ws2s.Protocol.Tests.Generators

let private rule text =
    match Policy.parseRule text with
    | Ok r -> r
    | Error e -> failwith e

let private frame (json: string) = ClientText(ReadOnlyMemory(Encoding.UTF8.GetBytes json))

/// DNS names of 2-4 labels under `.test` (never special-use: no `localhost`, no `.invalid`).
let private genName =
    let label = Gen.elements [ "good"; "bad"; "db"; "redis"; "a"; "x-1"; "example"; "internal" ]
    Gen.choose (1, 3) |> Gen.bind (fun n -> Gen.listOfLength n label) |> Gen.map (fun labels -> String.Join(".", labels @ [ "test" ]))

let private genLoopback = Gen.choose (1, 254) |> Gen.map (fun last -> $"127.0.0.{last}")

let private pinned = "cGlubmVkLWtleQ=="
let private other = "b3RoZXIta2V5"

let private settingsWithPin name =
    { standardSettings with Policy = { standardSettings.Policy with Pins = [ rule name, [ pinned ] ] } }

/// A `tls` connect to `address` (no server name) up to its handshake: the session and the effects.
let private securing settings (address: string) =
    let session, _ = Session.step (Session.start settings t0) t0 (frame $"""{{"command":"connect","host":"{address}","port":9401,"tls":true}}""")
    Session.step session t0 (Dialled 1L)

[<Property>]
let ``a certificate that presents a pinned name must match its pins whatever address the client asked for``
    (matches: bool) =
    Prop.forAll (Arb.fromGen (Gen.zip genName genLoopback)) (fun (name, address) ->
        let session, effects = securing (settingsWithPin name) address
        // The driver is asked for the handshake with no pins: it reports the certificate, the core judges.
        Assert.Equal<Effect list>([ SecureConnection(1L, address) ], effects)
        let certificate = { Names = [ name; address ]; Hashes = [ (if matches then pinned else other) ] }
        let _, effects = Session.step session t0 (Secured(1L, certificate))
        if matches then effects = [ Reply(Done "connect"); Observe(ConnectAnswered(Some 0L, 0)) ]
        else
            effects = [ CloseConnection 1L
                        Reply(TlsFailed $"certificate does not match the pinned keys for {address}")
                        Observe(ConnectAnswered(Some 0L, 8)) ])

[<Property>]
let ``a wildcard certificate counts for the pinned names one label under its domain, and only those`` () =
    Prop.forAll (Arb.fromGen genName) (fun name ->
        let wildcard = "*." + name
        let child = "leaf." + name
        let grandchild = "deep.leaf." + name
        let policy = { standardSettings.Policy with Pins = [ rule child, [ pinned ] ] }
        let deeper = { standardSettings.Policy with Pins = [ rule grandchild, [ pinned ] ] }
        let suffix = { standardSettings.Policy with Pins = [ rule ("*." + name), [ pinned ] ] }
        TlsPolicy.pinsForCertificate policy [ wildcard ] 443 = [ pinned ]
        && TlsPolicy.pinsForCertificate deeper [ wildcard ] 443 = []
        && TlsPolicy.pinsForCertificate suffix [ wildcard ] 443 = [ pinned ]
        && TlsPolicy.pinsForCertificate policy [ "unrelated.example" ] 443 = [])

[<Fact>]
let ``pins on an address apply to a certificate that presents it, and pin rules keep their ports`` () =
    let policy = { standardSettings.Policy with Pins = [ rule "127.0.0.66:9401", [ pinned ] ] }
    Assert.Equal<string list>([ pinned ], TlsPolicy.pinsForCertificate policy [ "good.example.com"; "127.0.0.66" ] 9401)
    Assert.Equal<string list>([], TlsPolicy.pinsForCertificate policy [ "good.example.com"; "127.0.0.66" ] 443)
    Assert.Equal<string list>([], TlsPolicy.pinsForCertificate policy [ "not a name"; "*.bad..name" ] 9401)

[<Fact>]
let ``starttls judges the pins of the names its certificate presents too`` () =
    let settings = settingsWithPin "good.example.com"
    let session, _ = Session.step (Session.start settings t0) t0 (frame """{"command":"connect","host":"127.0.0.1","port":25}""")
    let session, _ = Session.step session t0 (Dialled 1L)
    let session, effects = Session.step session t0 (frame """{"command":"starttls"}""")
    Assert.Equal<Effect list>([ SecureConnection(1L, "127.0.0.1") ], effects)
    let _, effects = Session.step session t0 (Secured(1L, { Names = [ "good.example.com" ]; Hashes = [ other ] }))
    Assert.Equal<Effect list>([ CloseConnection 1L; Reply(TlsFailed "certificate does not match the pinned keys for 127.0.0.1") ], effects)

let private tunnel (host: string) (tls: bool) =
    frame
        $"""{{"command":"connect","host":"{host}","port":6379,"tls":{(if tls then "true" else "false")},
              "ssh_host":"bastion.example","ssh_username":"ops","ssh_password":"pw"}}"""

let private requiring (rules: string list) =
    { standardSettings with Policy = { standardSettings.Policy with TlsRequired = List.map rule rules } }

let private refusedForTls host (effects: Effect list) =
    match effects with
    | [ Reply(Forbidden(h, why)); Observe(ConnectAnswered(None, 4)) ] -> h = host && why.StartsWith "tls.required "
    | _ -> false

[<Property>]
let ``a plaintext tunnel to a name the SSH server resolves is refused by an address rule of tls.required; with tls it goes ahead`` () =
    Prop.forAll (Arb.fromGen genName) (fun name ->
        let settings = requiring [ "10.0.0.0/8:6379" ]
        let _, plain = Session.step (Session.start settings t0) t0 (tunnel name false)
        let _, secured = Session.step (Session.start settings t0) t0 (tunnel name true)
        refusedForTls name plain && List.contains (Resolve(1L, "bastion.example")) secured)

[<Theory>]
[<InlineData("127.0.0.0/8:6379", "localhost")>] // the special name's addresses are known: loopback
[<InlineData("127.0.0.0/8:6379", "127.1")>]
[<InlineData("db.test:6379", "DB.test.")>]
[<InlineData("*.test", "db.test")>]
let ``a plaintext tunnel to a tls.required destination is refused with code 4`` (required: string, host: string) =
    let _, effects = Session.step (Session.start (requiring [ required ]) t0) t0 (tunnel host false)
    Assert.True(refusedForTls host effects, sprintf "%A" effects)

[<Theory>]
[<InlineData("db.test:6379", "other.test")>] // a name rule judges the name only
[<InlineData("10.0.0.0/8:5432", "db.test")>] // an address rule for another port
[<InlineData("127.0.0.0/8:6379", "10.1.2.3")>] // a literal outside the rule
let ``a plaintext tunnel that no tls.required rule can cover goes ahead`` (required: string, host: string) =
    let _, effects = Session.step (Session.start (requiring [ required ]) t0) t0 (tunnel host false)
    Assert.Contains(Resolve(1L, "bastion.example"), effects)

[<Fact>]
let ``a tls connect whose handshake runs out of time is code 2 in the connect's words, at the connect's deadline`` () =
    let settings = { standardSettings with ConnectTimeoutSeconds = 4 }
    let session, _ = securing settings "127.0.0.1"
    let due = t0.PlusSeconds 4
    Assert.Equal(Some due, Session.nextDeadline session)
    let expected = [ CloseConnection 1L; Reply(ConnectFailed "connect timed out after 4 s"); Observe(ConnectAnswered(Some 4000L, 2)) ]
    let timedOut, effects = Session.step session due Wake
    Assert.Equal<Effect list>(expected, effects)
    Assert.True(timedOut.Phase.IsIdle)
    // Woken late, or by another input after the deadline: the same outcome, and that input is then stale.
    let late, effects = Session.step session (due.PlusSeconds 3) (Secured(1L, Simulation.simulatedCertificate))
    Assert.Equal<Effect list>([ CloseConnection 1L; Reply(ConnectFailed "connect timed out after 4 s"); Observe(ConnectAnswered(Some 7000L, 2)) ], effects)
    Assert.True(late.Phase.IsIdle)

[<Fact>]
let ``a starttls whose handshake runs out of time is code 2 in words and the connection is closed`` () =
    let session, _ = Session.step (Session.start standardSettings t0) t0 (frame """{"command":"connect","host":"127.0.0.1","port":25}""")
    let session, _ = Session.step session t0 (Dialled 1L)
    let began = t0.PlusSeconds 30
    let session, _ = Session.step session began (frame """{"command":"starttls"}""")
    Assert.Equal(Some(began.PlusSeconds 10), Session.nextDeadline session)
    let session, effects = Session.step session (began.PlusSeconds 10) Wake
    Assert.Equal<Effect list>([ CloseConnection 1L; Reply(ConnectFailed "tls handshake did not finish within 10 s") ], effects)
    Assert.True(session.Phase.IsIdle)
