/// Which destinations a session may dial. Judged on resolved addresses, never on names,
/// so that no spelling of an address and no DNS answer can slip past it.
module Ws2s.Protocol.Policy

open System.Net
open System.Net.Sockets

type DestinationPolicy =
    { /// `allowConnectToServerLocal`: may sessions reach this machine itself (loopback, 0.0.0.0, ::)?
      AllowServerLocal: bool }

type Verdict =
    | Allowed
    /// The rule that refused it, in words (e.g. "loopback 127.0.0.0/8").
    | Refused of rule: string

/// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are judged as the IPv4 address they carry.
let canonical (address: IPAddress) =
    if address.IsIPv4MappedToIPv6 then address.MapToIPv4() else address

/// The rule that makes an address "this machine", if any.
let private serverLocalRule (address: IPAddress) =
    match address.AddressFamily with
    | AddressFamily.InterNetwork ->
        let first = address.GetAddressBytes().[0]
        if first = 127uy then Some "loopback 127.0.0.0/8"
        elif first = 0uy then Some "this host 0.0.0.0/8"
        else None
    | AddressFamily.InterNetworkV6 ->
        if address.Equals IPAddress.IPv6Loopback then Some "loopback ::1"
        elif address.Equals IPAddress.IPv6Any then Some "unspecified ::"
        else None
    | _ -> Some "unknown address family"

let judge (policy: DestinationPolicy) (address: IPAddress) : Verdict =
    let address = canonical address
    match serverLocalRule address with
    | Some rule when not policy.AllowServerLocal -> Refused rule
    | _ -> Allowed

/// A host is allowed only when every address it resolved to is allowed: the first refusal, if any.
let judgeAll (policy: DestinationPolicy) (addresses: IPAddress list) : Verdict =
    addresses
    |> List.tryPick (fun a ->
        match judge policy a with
        | Refused rule -> Some(Refused rule)
        | Allowed -> None)
    |> Option.defaultValue Allowed
