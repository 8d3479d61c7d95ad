module Ws2s.Protocol.Tests.PolicyTests

open System
open System.Net
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Ws2s.Protocol
open Ws2s.Protocol.Addresses
open Ws2s.Protocol.Policy

let strict = serverLocalOnly false
let relaxed = serverLocalOnly true

let rule text =
    match parseRule text with
    | Ok r -> r
    | Error e -> failwith e

let withRules allow deny = { strict with Allow = List.map rule allow; Deny = List.map rule deny }

let host text =
    match HostName.parse text with
    | Ok h -> h
    | Error e -> failwith e

let parse (spelling: string) =
    match IPAddress.TryParse(spelling.Trim('[', ']')) with
    | true, a -> a
    | _ -> failwith $"not an address: {spelling}"

let verdict policy (address: string) port = judge policy (host "client-asked-for-this") (parse address) port

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
    Assert.True((verdict strict spelling 80).IsRefused, spelling)
    Assert.Equal(Allowed, verdict relaxed spelling 80)

/// Each default-refused range: an address at its start, inside, and at its end, and what the refusal says.
[<Theory>]
[<InlineData("0.0.0.1", "this host 0.0.0.0/8")>]
[<InlineData("10.0.0.0", "private network 10.0.0.0/8")>]
[<InlineData("10.255.255.255", "private network 10.0.0.0/8")>]
[<InlineData("100.64.0.1", "shared address space 100.64.0.0/10")>]
[<InlineData("100.127.255.254", "shared address space 100.64.0.0/10")>]
[<InlineData("169.254.169.254", "link-local and cloud metadata 169.254.0.0/16")>]
[<InlineData("172.16.0.1", "private network 172.16.0.0/12")>]
[<InlineData("172.31.255.255", "private network 172.16.0.0/12")>]
[<InlineData("192.0.0.8", "IETF protocol assignments 192.0.0.0/24")>]
[<InlineData("192.0.2.1", "documentation 192.0.2.0/24")>]
[<InlineData("192.88.99.1", "6to4 relay anycast 192.88.99.0/24")>]
[<InlineData("192.168.1.1", "private network 192.168.0.0/16")>]
[<InlineData("198.18.0.1", "benchmarking 198.18.0.0/15")>]
[<InlineData("198.19.255.255", "benchmarking 198.18.0.0/15")>]
[<InlineData("198.51.100.7", "documentation 198.51.100.0/24")>]
[<InlineData("203.0.113.9", "documentation 203.0.113.0/24")>]
[<InlineData("224.0.0.1", "multicast 224.0.0.0/4")>]
[<InlineData("239.255.255.255", "multicast 224.0.0.0/4")>]
[<InlineData("240.0.0.1", "reserved 240.0.0.0/4")>]
[<InlineData("255.255.255.255", "reserved 240.0.0.0/4")>]
[<InlineData("::", "unspecified ::")>]
[<InlineData("::1", "loopback ::1")>]
[<InlineData("::10.0.0.1", "IPv4-compatible ::/96")>]
[<InlineData("::ffff:10.1.2.3", "private network 10.0.0.0/8")>]
[<InlineData("::ffff:169.254.169.254", "link-local and cloud metadata 169.254.0.0/16")>]
[<InlineData("64:ff9b::a00:1", "NAT64 64:ff9b::/96")>]
[<InlineData("64:ff9b:1::1", "local NAT64 64:ff9b:1::/48")>]
[<InlineData("2001::1", "Teredo 2001::/32")>]
[<InlineData("2001:db8::1", "documentation 2001:db8::/32")>]
[<InlineData("2002:c000:204::1", "6to4 2002::/16")>]
[<InlineData("fc00::1", "unique local fc00::/7")>]
[<InlineData("fd12:3456::1", "unique local fc00::/7")>]
[<InlineData("fe80::1", "link-local fe80::/10")>]
[<InlineData("febf::1", "link-local fe80::/10")>]
[<InlineData("fec0::1", "site-local fec0::/10")>]
[<InlineData("ff02::1", "multicast ff00::/8")>]
let ``special-purpose addresses are refused by default, naming their range`` (address: string, range: string) =
    Assert.Equal(Refused range, verdict strict address 443)

[<Theory>]
[<InlineData("10.1.2.3", "10.0.0.0/8")>]
[<InlineData("169.254.169.254", "169.254.169.254")>]
[<InlineData("fd00::5", "fd00::/8")>]
[<InlineData("192.168.7.7", "192.168.0.0/16")>]
let ``an address rule allows a special range explicitly`` (address: string, allow: string) =
    Assert.Equal(Allowed, verdict (withRules [ allow ] []) address 443)

[<Theory>]
[<InlineData("93.184.216.34")>]
[<InlineData("1.1.1.1")>]
[<InlineData("2606:4700::1111")>]
[<InlineData("::ffff:93.184.216.34")>]
let ``public unicast addresses are allowed when there is no allow list`` (spelling: string) =
    Assert.Equal(Allowed, verdict strict spelling 443)

[<Fact>]
let ``deny wins over allow`` () =
    let policy = withRules [ "10.0.0.0/8" ] [ "10.9.0.0/16" ]
    Assert.Equal(Allowed, verdict policy "10.1.0.1" 22)
    Assert.Equal(Refused "deny rule 10.9.0.0/16", verdict policy "10.9.0.1" 22)
    Assert.Equal(Refused "deny rule 10.9.0.0/16", judge { policy with AllowServerLocal = true } (host "x") (parse "10.9.0.1") 22)

[<Fact>]
let ``ports narrow a rule to a port or a range`` () =
    let policy = withRules [ "10.1.2.3:6379"; "[fd00::]/8:8000-8100" ] []
    Assert.Equal(Allowed, verdict policy "10.1.2.3" 6379)
    Assert.Equal(Refused "private network 10.0.0.0/8", verdict policy "10.1.2.3" 6380)
    Assert.Equal(Allowed, verdict policy "fd00::1" 8000)
    Assert.Equal(Allowed, verdict policy "fd00::1" 8100)
    Assert.Equal(Refused "unique local fc00::/7", verdict policy "fd00::1" 8101)

[<Fact>]
let ``with an allow list only what it names is reachable`` () =
    let policy = withRules [ "*.example.com:443"; "api.partner.net" ] []
    let public' = parse "93.184.216.34"
    Assert.Equal(Allowed, judge policy (host "www.example.com") public' 443)
    Assert.Equal(Allowed, judge policy (host "WWW.Example.COM.") public' 443)
    Assert.Equal(Refused "not in the allow list", judge policy (host "www.example.com") public' 80)
    Assert.Equal(Refused "not in the allow list", judge policy (host "example.com") public' 443)
    Assert.Equal(Refused "not in the allow list", judge policy (host "evil-example.com") public' 443)
    Assert.Equal(Allowed, judge policy (host "api.partner.net") public' 25)
    Assert.Equal(Refused "not in the allow list", judge policy (host "other.net") public' 443)

[<Fact>]
let ``a name rule never opens a private address: DNS cannot point an allowed name inward`` () =
    let policy = withRules [ "*.example.com" ] []
    Assert.Equal(Refused "link-local and cloud metadata 169.254.0.0/16", judge policy (host "rebind.example.com") (parse "169.254.169.254") 80)
    Assert.Equal(Refused "loopback 127.0.0.0/8", judge policy (host "rebind.example.com") (parse "127.0.0.1") 80)

[<Fact>]
let ``a name deny rule refuses that name whatever it resolves to`` () =
    let policy = withRules [] [ "metadata.google.internal"; "*.corp.example:22" ]
    Assert.Equal(Refused "deny rule metadata.google.internal", judge policy (host "Metadata.Google.Internal") (parse "93.184.216.34") 80)
    Assert.Equal(Refused "deny rule *.corp.example:22", judge policy (host "git.corp.example") (parse "93.184.216.34") 22)
    Assert.Equal(Allowed, judge policy (host "git.corp.example") (parse "93.184.216.34") 443)

[<Fact>]
let ``the server's own listening endpoint is refused, even with loopback allowed`` () =
    let policy = { relaxed with OwnEndpoints = [ IPEndPoint(IPAddress.Any, 3613) ] }
    Assert.Equal(Refused "the ws2s server itself", verdict policy "127.0.0.1" 3613)
    Assert.Equal(Refused "the ws2s server itself", verdict policy "::ffff:127.0.0.1" 3613)
    Assert.Equal(Allowed, verdict policy "127.0.0.1" 6379)

[<Theory>]
[<InlineData("10.0.0.0/33")>]
[<InlineData("fd00::/129")>]
[<InlineData("10.0.0.1:0")>]
[<InlineData("10.0.0.1:70000")>]
[<InlineData("10.0.0.1:90-80")>]
[<InlineData("not a host!")>]
[<InlineData("*.")>]
[<InlineData("")>]
let ``a malformed rule is an error that quotes it`` (text: string) =
    match parseRule text with
    | Ok r -> failwithf "accepted %A" r
    | Error message -> Assert.False(String.IsNullOrWhiteSpace message)

let genIPv4 = Gen.arrayOfLength 4 (Gen.choose (0, 255) |> Gen.map byte) |> Gen.map IPAddress

/// The spellings an IPv4 address can take: dotted, a 32-bit number, hex, IPv4-mapped IPv6.
let spellings (address: IPAddress) =
    let b = address.GetAddressBytes()
    let n = (uint32 b[0] <<< 24) ||| (uint32 b[1] <<< 16) ||| (uint32 b[2] <<< 8) ||| uint32 b[3]
    [ address.ToString(); string n; sprintf "0x%08x" n; address.MapToIPv6().ToString() ]
    |> List.map parse

[<Property(MaxTest = 500)>]
let ``every address in a denied block is refused whatever its spelling`` () =
    Prop.forAll (Arb.fromGen (Gen.zip genIPv4 (Gen.choose (0, 32)))) (fun (address, prefix) ->
        let block = rule $"{address}/{prefix}"
        let policy = { relaxed with Deny = [ block ]; Allow = [ rule "0.0.0.0/0" ] }
        spellings address |> List.forall (fun a -> (judge policy (host "h") a 80).IsRefused))

[<Property>]
let ``an IPv4-mapped IPv6 address gets the verdict of the IPv4 address it carries`` () =
    Prop.forAll (Arb.fromGen genIPv4) (fun v4 -> judge strict (host "h") (v4.MapToIPv6()) 80 = judge strict (host "h") v4 80)

[<Property>]
let ``every 127/8 address is refused, whatever the last three bytes`` (b: byte, c: byte, d: byte) =
    (judge strict (host "h") (IPAddress [| 127uy; b; c; d |]) 80).IsRefused

[<Property>]
let ``a host is refused when any one of its addresses is`` () =
    Prop.forAll (Arb.fromGen (Gen.listOf genIPv4)) (fun addresses ->
        let all = addresses @ [ IPAddress.Loopback ]
        (judgeAll strict (host "h") all 80).IsRefused)

// --- Attacks of issue 10 (2): the switch and the allow list, ws2s's own port, this machine's addresses.

[<Fact>]
let ``allowConnectToServerLocal never widens an allow list: the README's Redis-only config reaches Redis only`` () =
    let policy = { withRules [ "127.0.0.1:6379" ] [] with AllowServerLocal = true }
    Assert.Equal(Allowed, verdict policy "127.0.0.1" 6379)
    Assert.Equal(Refused "not in the allow list", verdict policy "127.0.0.1" 22)
    Assert.Equal(Refused "not in the allow list", verdict policy "::1" 6379)
    Assert.Equal(Refused "not in the allow list", judge policy (host "localhost") (parse "127.0.0.1") 22)

[<Theory>]
[<InlineData("0.0.0.0")>]
[<InlineData("0")>]
[<InlineData("::ffff:0.0.0.0")>]
[<InlineData("::")>]
[<InlineData("::1")>]
[<InlineData("127.0.0.1")>]
[<InlineData("127.0.0.2")>]
[<InlineData("0x7f000001")>]
[<InlineData("93.184.216.34")>] // this machine's own interface address, below
let ``ws2s's own port is refused under every spelling of this machine, whatever the switches`` (spelling: string) =
    let own = [ IPEndPoint(IPAddress.Loopback, 3613) ]
    let local = [ IPAddress.Parse "93.184.216.34" ]
    for policy in [ strict; relaxed; withRules [ "0.0.0.0/0"; "::/0" ] []; { withRules [ "0.0.0.0/0" ] [] with AllowServerLocal = true } ] do
        let policy = { policy with OwnEndpoints = own; LocalAddresses = local }
        let address = (host spelling).Kind |> function Ws2s.Protocol.Literal a -> a | _ -> failwith "literal"
        Assert.Equal(Refused "the ws2s server itself", judge policy (host spelling) address 3613)

[<Fact>]
let ``this machine's interface addresses count as this machine`` () =
    let policy = { strict with LocalAddresses = [ IPAddress.Parse "93.184.216.34"; IPAddress.Parse "2606:4700::1111" ] }
    Assert.Equal(Refused "this machine's address 93.184.216.34", verdict policy "93.184.216.34" 6379)
    Assert.Equal(Refused "this machine's address 93.184.216.34", verdict policy "::ffff:93.184.216.34" 6379)
    Assert.Equal(Refused "this machine's address 2606:4700::1111", verdict policy "2606:4700::1111" 22)
    Assert.Equal(Allowed, verdict policy "93.184.216.35" 6379)
    // A name that resolves to it is judged by the address, so DNS cannot point at this machine either.
    Assert.Equal(Refused "this machine's address 93.184.216.34", judge policy (host "me.example.com") (parse "93.184.216.34") 80)
    Assert.Equal(Allowed, verdict { policy with AllowServerLocal = true } "93.184.216.34" 6379)

[<Theory>]
[<InlineData("::ffff:0:a00:1")>]
[<InlineData("::ffff:0:7f00:1")>]
[<InlineData("::ffff:0:5db8:d822")>]
let ``IPv4-translated addresses (RFC 2765) are a special range`` (address: string) =
    Assert.Equal(Refused "IPv4-translated ::ffff:0:0:0/96", verdict strict address 80)

// --- Attacks of issue 10 (3): names judged are the names resolved.

[<Fact>]
let ``a deny name rule refuses the name in any case, with or without its trailing dot`` () =
    let policy = withRules [] [ "blocked.test"; "*.corp.example" ]
    for spelling in [ "blocked.test"; "BLOCKED.test."; "git.Corp.Example."; "a.b.corp.example" ] do
        Assert.True((judge policy (host spelling) (parse "93.184.216.34") 80).IsRefused, spelling)
    // `blocked.test` is exact: its subdomains need `*.blocked.test`. Address rules are the strong form.
    Assert.Equal(Allowed, judge policy (host "www.blocked.test") (parse "93.184.216.34") 80)

[<Fact>]
let ``rules and hosts meet in the ASCII form of internationalized names`` () =
    let policy = withRules [ "bücher.example:443"; "*.müller.example" ] []
    let public' = parse "93.184.216.34"
    Assert.Equal(Allowed, judge policy (host "XN--BCHER-KVA.example") public' 443)
    Assert.Equal(Allowed, judge policy (host "Bücher.example.") public' 443)
    Assert.Equal(Allowed, judge policy (host "shop.xn--mller-kva.example") public' 443)
    Assert.Equal(Refused "not in the allow list", judge policy (host "bucher.example") public' 443)

[<Theory>]
[<InlineData("evil.test\u0000.example.com")>]
[<InlineData("blocked.test\u0000")>]
[<InlineData("a .example.com")>]
[<InlineData("*.*.example.com")>]
[<InlineData("x/.example.com")>]
let ``a rule with a host that is not a host name is a configuration error`` (text: string) =
    Assert.True((parseRule text).IsError, text)

// --- Session scopes (issue 11: an application narrows one session's destinations).

[<Fact>]
let ``a scope narrows a session to what it names, and scopes intersect`` () =
    let public' = parse "93.184.216.34"
    let scoped = strict |> narrow [ rule "93.184.216.34:6379"; rule "*.redis.example" ]
    Assert.Equal(Allowed, judge scoped (host "client-asked-for-this") public' 6379)
    Assert.Equal(Refused "not in this session's scope", judge scoped (host "client-asked-for-this") public' 22)
    Assert.Equal(Allowed, judge scoped (host "eu.redis.example") public' 22)
    let both = scoped |> narrow [ rule "*.example:6379" ]
    Assert.Equal(Refused "not in this session's scope", judge both (host "eu.redis.example") public' 22)
    Assert.Equal(Allowed, judge both (host "eu.redis.example") public' 6379)
    Assert.Equal(Refused "not in this session's scope", judge (strict |> narrow []) (host "eu.redis.example") public' 6379)

[<Property>]
let ``a scope never widens the server's policy: no refusal becomes allowed`` (a: byte, b: byte, c: byte, d: byte, port: uint16, allowServerLocal: bool) =
    let address = IPAddress [| a; b; c; d |]
    let port = int port
    let policy = { serverLocalOnly allowServerLocal with Deny = [ rule "93.184.216.0/24" ]; OwnEndpoints = [ IPEndPoint(IPAddress.Loopback, 3613) ] }
    let everything = policy |> narrow [ rule "0.0.0.0/0"; rule "[::]/0" ]
    let before = judge policy (host "client-asked-for-this") address port
    let after = judge everything (host "client-asked-for-this") address port
    // A scope that names everything changes nothing; it can only take away.
    before = after

[<Fact>]
let ``a scope also bounds where an SSH tunnel may lead`` () =
    let scopes = [ [ rule "db.internal:5432" ] ]
    Assert.Equal(Allowed, judgeTunnelTarget [] scopes (host "db.internal") 5432)
    Assert.Equal(Refused "not in this session's scope", judgeTunnelTarget [] scopes (host "db.internal") 22)
    Assert.Equal(Refused "not in ssh.allowTargets", judgeTunnelTarget [ rule "other.internal" ] scopes (host "db.internal") 5432)

/// Rules over a small world of addresses, names and ports, so random policies and scopes overlap often.
let private genRuleText =
    Gen.oneof
        [ Gen.elements [ "10.0.0.0/8"; "10.1.0.0/16"; "93.184.216.0/24"; "93.184.216.34"; "127.0.0.0/8"; "0.0.0.0/0"; "192.168.1.0/24" ]
          Gen.elements [ "redis.example"; "*.example"; "db.internal"; "*.internal" ] ]
    |> Gen.map2 (fun port text -> match port with Some p -> $"{text}:{p}" | None -> text) (Gen.elements [ None; Some 6379; Some 22 ])

let private genServerPolicy =
    gen {
        let! allowServerLocal = Gen.elements [ true; false ]
        let! allow = Gen.resize 3 (Gen.listOf genRuleText)
        let! deny = Gen.resize 2 (Gen.listOf genRuleText)
        return { serverLocalOnly allowServerLocal with Allow = List.map rule allow; Deny = List.map rule deny }
    }

[<Property(MaxTest = 2000)>]
let ``a token's scope intersects the server's policy: allowed exactly where both allow`` () =
    let genCase =
        gen {
            let! policy = genServerPolicy
            let! scope = Gen.resize 3 (Gen.listOf genRuleText)
            let! address = Gen.elements [ "10.1.2.3"; "93.184.216.34"; "93.184.216.7"; "127.0.0.1"; "192.168.1.5"; "8.8.4.4" ]
            let! name = Gen.elements [ "redis.example"; "eu.example"; "db.internal"; "elsewhere.org" ]
            let! port = Gen.elements [ 6379; 22; 80 ]
            return policy, scope, parse address, host name, port
        }
    Prop.forAll (Arb.fromGen genCase) (fun (policy, scope, address, name, port) ->
        let scopeRules = List.map rule scope
        let byServer = judge policy name address port = Allowed
        let byScope = scopeAllows scopeRules name address port
        let byBoth = judge (narrow scopeRules policy) name address port = Allowed
        byBoth = (byServer && byScope))
