module Ws2s.Protocol.Tests.PolicyTests

open System.Net
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Ws2s.Protocol
open Ws2s.Protocol.Policy

let strict = { AllowServerLocal = false }
let relaxed = { AllowServerLocal = true }

let parse (spelling: string) =
    let bare = spelling.Trim('[', ']')
    match IPAddress.TryParse bare with
    | true, a -> a
    | _ -> failwith $"not an address: {spelling}"

[<Theory>]
[<InlineData("127.0.0.1")>]
[<InlineData("127.1")>]
[<InlineData("127.255.255.254")>]
[<InlineData("0x7f000001")>]
[<InlineData("2130706433")>]
[<InlineData("0177.0.0.1")>]
[<InlineData("::1")>]
[<InlineData("[::1]")>]
[<InlineData("::ffff:127.0.0.1")>]
[<InlineData("::ffff:7f00:1")>]
[<InlineData("0.0.0.0")>]
[<InlineData("::")>]
let ``every spelling of this machine is refused unless allowConnectToServerLocal`` (spelling: string) =
    let address = parse spelling
    Assert.True((judge strict address).IsRefused, spelling)
    Assert.Equal(Allowed, judge relaxed address)

[<Theory>]
[<InlineData("93.184.216.34")>]
[<InlineData("2606:4700::1111")>]
[<InlineData("::ffff:93.184.216.34")>]
let ``addresses of other machines are allowed`` (spelling: string) =
    Assert.Equal(Allowed, judge strict (parse spelling))

let genIPv4 = Gen.arrayOfLength 4 (Gen.choose (0, 255) |> Gen.map byte) |> Gen.map IPAddress

[<Property>]
let ``an IPv4-mapped IPv6 address gets the verdict of the IPv4 address it carries`` () =
    Prop.forAll (Arb.fromGen genIPv4) (fun v4 -> judge strict (v4.MapToIPv6()) = judge strict v4)

[<Property>]
let ``every 127/8 address is refused, whatever the last three bytes`` (b: byte, c: byte, d: byte) =
    (judge strict (IPAddress [| 127uy; b; c; d |])).IsRefused

[<Property>]
let ``a host is refused when any one of its addresses is`` () =
    Prop.forAll (Arb.fromGen (Gen.listOf genIPv4)) (fun addresses ->
        let all = addresses @ [ IPAddress.Loopback ]
        (judgeAll strict all).IsRefused && judgeAll relaxed all = Allowed)
