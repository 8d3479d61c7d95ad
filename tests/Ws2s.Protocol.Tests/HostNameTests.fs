/// Host names are parsed once, and what the policy judges is what the resolver reads.
module Ws2s.Protocol.Tests.HostNameTests

open System
open System.Net
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Ws2s.Protocol

let private parsed text =
    match HostName.parse text with
    | Ok host -> Ok host.Kind
    | Error e -> Error e

[<Theory>]
[<InlineData("evil.test\u0000.example.com")>]
[<InlineData("blocked.test\u0000")>]
[<InlineData("\u0000")>]
[<InlineData("host\r\nname")>]
[<InlineData("a\tb")>]
[<InlineData(" example.com")>]
[<InlineData("example.com ")>]
[<InlineData("exa mple.com")>]
[<InlineData("a..b")>]
[<InlineData(".example.com")>]
[<InlineData("example.com..")>]
[<InlineData(".")>]
[<InlineData("")>]
[<InlineData("evil.test/.example.com")>]
[<InlineData("evil.test#.example.com")>]
[<InlineData("user@example.com")>]
[<InlineData("example.com:80")>]
[<InlineData("fe80::1%eth0")>]
[<InlineData("%31%32%37.0.0.1")>]
let ``what a resolver could read as another name is refused`` (text: string) =
    Assert.True((parsed text).IsError, sprintf "%A parsed" text)

[<Fact>]
let ``labels of at most 63 octets and names of at most 253`` () =
    let label n = String('a', n)
    Assert.True((parsed (label 63 + ".example")).IsOk)
    Assert.True((parsed (label 64 + ".example")).IsError)
    let name = String.Join(".", Array.create 4 (label 62)) // 4*62 + 3 = 251
    Assert.True((parsed name).IsOk)
    Assert.True((parsed (name + ".a")).IsOk) // 253
    Assert.True((parsed (name + ".ab")).IsError) // 254
    Assert.True((parsed (name + ".a.")).IsOk) // a trailing dot is not counted

[<Theory>]
[<InlineData("127.1", "127.0.0.1")>]
[<InlineData("0x7f000001", "127.0.0.1")>]
[<InlineData("2130706433", "127.0.0.1")>]
[<InlineData("0177.0.0.1", "127.0.0.1")>]
[<InlineData("127.0.0.1.", "127.0.0.1")>]
[<InlineData("[::1]", "::1")>]
[<InlineData("::ffff:127.0.0.1", "::ffff:127.0.0.1")>]
[<InlineData("0", "0.0.0.0")>]
[<InlineData("[127.0.0.1]", "127.0.0.1")>]
let ``IP literals in any spelling are the address they mean`` (text: string, address: string) =
    Assert.Equal(Ok(Literal(IPAddress.Parse address)), parsed text)

[<Theory>]
[<InlineData("Example.COM.", "example.com")>]
[<InlineData("bücher.example", "xn--bcher-kva.example")>]
[<InlineData("BÜCHER.example", "xn--bcher-kva.example")>]
[<InlineData("_service.example", "_service.example")>]
let ``names are judged in their lower-case ASCII form`` (text: string, name: string) =
    Assert.Equal(Ok(DnsName name), parsed text)

let private nameChar (c: char) = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c = '-' || c = '_' || c = '.'

/// Strings built from name characters and the characters that have fooled resolvers and URL parsers.
let private genHostText =
    let pieces =
        Gen.elements [ "a"; "Z"; "0"; "9"; "-"; "_"; "."; ".."; "\u0000"; " "; "\t"; "\n"; "%"; "/"; "\\"; "@"; ":"; "#"; "?"
                       "["; "]"; "ü"; "。"; "\u200b"; "xn--"; "0x"; "127"; "localhost"; "example"; "com"; "\u00ad"; "ｅ" ]
    Gen.listOf pieces |> Gen.map String.Concat

[<Property(MaxTest = 2000)>]
let ``no string passes as a name that a resolver would read differently from the name judged`` () =
    Prop.forAll (Arb.fromGen genHostText) (fun text ->
        match HostName.parse text with
        | Error _ -> true
        | Ok { Kind = Literal _ } -> true
        | Ok { Kind = DnsName name } ->
            name.Length >= 1 && name.Length <= 253
            && Seq.forall nameChar name
            && not (name.Split('.') |> Array.exists (fun l -> l = "" || l.Length > 63))
            && not (fst (IPAddress.TryParse name))
            // Parsing the judged name again gives the same name: the form is final.
            && HostName.parse name = Ok { Written = name; Kind = DnsName name })
