/// Which destinations a session may dial. Judged on resolved addresses, never on names alone, so no
/// spelling of an address and no DNS answer can slip past it. Pure: the runner parses the config's
/// rules with `parseRule` and hands the result to every session.
module Ws2s.Protocol.Policy

open System
open System.Net
open Ws2s.Protocol.Addresses

/// What a rule matches.
type Pattern =
    | Addresses of Cidr
    /// An exact host name (lower case, no trailing dot).
    | Name of string
    /// `*.example.com`: any name ending in `.example.com` (stored with its leading dot).
    | Suffix of string
    /// `unix:/run/app.sock`, `scheme:name`: exactly this destination (a path compared byte for byte).
    | Exactly of Destination

type Rule =
    { /// The rule as the operator wrote it; refusals quote it.
      Text: string
      Pattern: Pattern
      /// Inclusive port range; None matches every port.
      Ports: (int * int) option }

type DestinationPolicy =
    { /// `allowConnectToServerLocal`: may sessions reach this machine itself (loopback, 0.0.0.0, ::, and
      /// its interfaces' addresses) as they reach any public address? It never widens an allow list.
      AllowServerLocal: bool
      /// With any allow rule, only what the rules allow is reachable (special ranges need an address rule).
      Allow: Rule list
      /// Deny wins over everything.
      Deny: Rule list
      /// Where this server listens: never dialled under any address of this machine, so a session
      /// cannot loop back into ws2s.
      OwnEndpoints: IPEndPoint list
      /// This machine's own interface addresses (read by the runner at start and when they change):
      /// judged like loopback.
      LocalAddresses: IPAddress list
      /// Narrower rule sets for one session (from the application that admitted it, or a token):
      /// a destination must match a rule of every set, as well as pass everything above. A scope
      /// only ever takes away; an empty set allows nothing.
      Scopes: Rule list list
      /// Destinations reachable only with `tls: true` (`tls.required`): matched like deny rules, on
      /// every address and on the requested name.
      TlsRequired: Rule list
      /// Certificate pins by destination (`tls.pinned`): a TLS connection to a destination a rule
      /// matches must present a certificate whose SHA-256 (or its public key's) is one of the pins.
      Pins: (Rule * string list) list }

let serverLocalOnly allowServerLocal =
    { AllowServerLocal = allowServerLocal; Allow = []; Deny = []; OwnEndpoints = []; LocalAddresses = []; Scopes = []
      TlsRequired = []; Pins = [] }

/// The policy narrowed to what `rules` allow, on top of any narrowing it has.
let narrow (rules: Rule list) (policy: DestinationPolicy) = { policy with Scopes = policy.Scopes @ [ rules ] }

let private parsePorts (text: string) =
    let range =
        match text.Split '-' with
        | [| single |] -> Some(single, single)
        | [| low; high |] -> Some(low, high)
        | _ -> None
    match range with
    | Some(low, high) ->
        match Int32.TryParse low, Int32.TryParse high with
        | (true, l), (true, h) when 1 <= l && l <= h && h <= 65535 -> Ok(Some(l, h))
        | _ -> Error $"'{text}' is not a port or port range (1-65535)"
    | None -> Error $"'{text}' is not a port or port range (1-65535)"

let private parsePattern (text: string) =
    let addressOrCidr (spec: string) =
        let slash = spec.IndexOf '/'
        let addressPart, prefix = if slash < 0 then spec, None else spec.Substring(0, slash), Some(spec.Substring(slash + 1))
        match IPAddress.TryParse addressPart with
        | true, address ->
            let address = canonical address
            let bits = address.GetAddressBytes().Length * 8
            let length =
                match prefix with
                | None -> Some bits
                | Some p ->
                    match Int32.TryParse p with
                    | true, n -> Some n
                    | _ -> None
            match length |> Option.bind (cidrOf address) with
            | Some c -> Ok(Addresses c)
            | None -> Error $"'{spec}' has a prefix length outside 0-{bits}"
        | _ -> Error $"'{spec}' is not an IP address or CIDR block"
    if text.StartsWith "*." then
        match HostName.normalizeName (text.Substring 2) with
        | Ok domain -> Ok(Suffix("." + domain))
        | Error e -> Error $"'{text}': {e}"
    else
        match addressOrCidr text with
        | Ok pattern -> Ok pattern
        | Error e when text.Contains '/' || text.Contains ':' -> Error e
        | Error _ ->
            match HostName.parse text with
            | Ok { Kind = DnsName name } -> Ok(Name name)
            | Ok { Kind = Literal _ } -> Error $"'{text}' is not a plain IP address"
            | Error e -> Error $"'{text}' is not a host name, IP address, CIDR block or *.domain ({e})"

/// Parses a rule: `10.0.0.0/8`, `fd00::/8`, `[fd00::]/8:443`, `192.0.2.1:6379`, `redis.internal:6379`,
/// `*.example.com:8000-8100`, `unix:/run/app.sock` (that path exactly), `scheme:name` (a named peer).
/// IPv6 with ports goes in brackets.
let parseRule (text: string) : Result<Rule, string> =
    let text = text.Trim()
    if Destinations.isPeerRule text then
        match Destinations.tryParse text with
        | Some(Ok destination) -> Ok { Text = text; Pattern = Exactly destination; Ports = None }
        | Some(Error e) -> Error $"'{text}': {e}"
        | None -> Error $"'{text}' is not a unix: path or scheme:name"
    else
        let pattern, ports =
            if text.StartsWith "[" then
                let close = text.IndexOf ']'
                if close < 0 then text, None
                else
                    let inside = text.Substring(1, close - 1)
                    let after = text.Substring(close + 1)
                    let prefix, portPart =
                        match after.IndexOf ':' with
                        | -1 -> after, None
                        | colon -> after.Substring(0, colon), Some(after.Substring(colon + 1))
                    inside + prefix, portPart
            elif (text |> Seq.filter ((=) ':') |> Seq.length) = 1 then
                let colon = text.IndexOf ':'
                text.Substring(0, colon), Some(text.Substring(colon + 1))
            else
                text, None
        if text = "" then Error "an empty rule"
        else
            match parsePattern pattern, (ports |> Option.map parsePorts |> Option.defaultValue (Ok None)) with
            | Ok p, Ok range -> Ok { Text = text; Pattern = p; Ports = range }
            | Error e, _
            | _, Error e -> Error e

type Verdict =
    | Allowed
    /// The rule or range that refused it, in words (e.g. "private network 10.0.0.0/8").
    | Refused of rule: string

let internal portMatches rule port =
    match rule.Ports with
    | None -> true
    | Some(low, high) -> low <= port && port <= high

let internal matchesAddress rule (address: IPAddress) port =
    match rule.Pattern with
    | Addresses block -> block.Contains address && portMatches rule port
    | Name _ | Suffix _ | Exactly _ -> false

/// Does the rule list exactly this destination (a Unix path, a named peer)?
let internal matchesPeer rule (destination: Destination) =
    match rule.Pattern with
    | Exactly listed -> listed = destination
    | Addresses _ | Name _ | Suffix _ -> false

let internal matchesName rule (host: HostName) port =
    match rule.Pattern, host.Kind with
    | Name n, DnsName name -> n = name && portMatches rule port
    | Suffix s, DnsName name -> name.EndsWith s && portMatches rule port
    | _ -> false

/// Is `address` this machine itself: loopback, the unspecified addresses (0.0.0.0/8 and `::` reach this
/// machine), or one of its interfaces' addresses? Some with the words that name it.
let thisMachine (policy: DestinationPolicy) (address: IPAddress) =
    let address = canonical address
    match serverLocalRanges |> List.tryFind (fun (block, _) -> block.Contains address) with
    | Some(_, description) -> Some description
    | None when policy.LocalAddresses |> List.exists (fun a -> (canonical a).GetAddressBytes() = address.GetAddressBytes()) ->
        Some $"this machine's address {address}"
    | None -> None

/// Does one scope (a rule set) have a rule for this address, or the requested name, and port?
let scopeAllows (rules: Rule list) (host: HostName) (address: IPAddress) port =
    rules |> List.exists (fun r -> matchesAddress r (canonical address) port || matchesName r host port)

/// Does every scope of the session allow this address (or requested name) and port?
let private inScopes (policy: DestinationPolicy) (host: HostName) address port =
    policy.Scopes |> List.forall (fun rules -> scopeAllows rules host address port)

/// The verdict for dialling `address`:`port` on behalf of a client that asked for `host`. In order:
/// 1. deny rules (address, or the requested name);
/// 2. this server's own endpoints, on any address of this machine;
/// 2b. the session's scopes (each must allow it);
/// 3. address allow rules;
/// 4. this machine's addresses, unless `AllowServerLocal` (which makes them ordinary addresses);
///    the other special ranges;
/// 5. when allow rules exist, only a requested name they allow; without allow rules, everything else.
let judge (policy: DestinationPolicy) (host: HostName) (address: IPAddress) (port: int) : Verdict =
    let address = canonical address
    let local = thisMachine policy address
    let isOwn (endpoint: IPEndPoint) =
        endpoint.Port = port && (canonical endpoint.Address = address || local.IsSome)
    match policy.Deny |> List.tryFind (fun r -> matchesAddress r address port || matchesName r host port) with
    | Some rule -> Refused $"deny rule {rule.Text}"
    | None ->
    if policy.OwnEndpoints |> List.exists isOwn then Refused "the ws2s server itself"
    elif not (inScopes policy host address port) then Refused "not in this session's scope"
    elif policy.Allow |> List.exists (fun r -> matchesAddress r address port) then Allowed
    else
    let special =
        match local with
        | Some description when not policy.AllowServerLocal -> Some description
        | Some _ -> None
        | None -> specialRanges |> List.tryPick (fun (block, description) -> if block.Contains address then Some description else None)
    match special with
    | Some description -> Refused description
    | None when policy.Allow.IsEmpty -> Allowed
    | None when policy.Allow |> List.exists (fun r -> matchesName r host port) -> Allowed
    | None -> Refused "not in the allow list"

/// The final destination of an SSH tunnel, which the SSH server resolves and dials: judged by
/// `ssh.allowTargets` (no rules: any) and the session's scopes, on the name or literal address the client gave.
let judgeTunnelTarget (rules: Rule list) (scopes: Rule list list) (host: HostName) (port: int) : Verdict =
    let matches rule =
        matchesName rule host port
        || (match host.Kind with
            | Literal address -> matchesAddress rule (canonical address) port
            | DnsName _ -> false)
    if not (rules.IsEmpty || List.exists matches rules) then Refused "not in ssh.allowTargets"
    elif not (scopes |> List.forall (List.exists matches)) then Refused "not in this session's scope"
    else Allowed

/// A host is allowed only when every address it resolved to is allowed: the first refusal, if any.
let judgeAll (policy: DestinationPolicy) (host: HostName) (addresses: IPAddress list) (port: int) : Verdict =
    addresses
    |> List.tryPick (fun a ->
        match judge policy host a port with
        | Refused rule -> Some(Refused rule)
        | Allowed -> None)
    |> Option.defaultValue Allowed

/// The verdict for a destination that is not a host name (a Unix socket, a named peer): reachable only
/// when an allow rule lists it exactly, and no deny rule does, and every scope of the session lists it.
/// `allowConnectToServerLocal` and an empty allow list allow none of them.
let judgePeer (policy: DestinationPolicy) (destination: Destination) : Verdict =
    match policy.Deny |> List.tryFind (fun r -> matchesPeer r destination) with
    | Some rule -> Refused $"deny rule {rule.Text}"
    | None ->
    if not (policy.Scopes |> List.forall (List.exists (fun r -> matchesPeer r destination))) then Refused "not in this session's scope"
    elif policy.Allow |> List.exists (fun r -> matchesPeer r destination) then Allowed
    else
        let kind =
            match destination with
            | UnixPeer _ -> "a Unix socket"
            | _ -> "a destination that is not a host name"
        Refused $"{kind} is reachable only when destinations.allow lists it exactly: add \"{destination.Text}\" to allow it"
