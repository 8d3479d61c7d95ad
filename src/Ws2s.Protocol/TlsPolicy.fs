/// What the destination policy says of TLS: the `tls.required` rule that covers a destination, and the
/// certificate pins (`tls.pinned`) that apply to it or to what a certificate presents. Pure.
module Ws2s.Protocol.TlsPolicy

open System.Net
open Ws2s.Protocol.Addresses
open Ws2s.Protocol.Policy

let private matchesAny rule (hosts: HostName list) (addresses: IPAddress list) port =
    hosts |> List.exists (fun h ->
        matchesName rule h port
        || (match h.Kind with
            | Literal address -> matchesAddress rule (canonical address) port
            | DnsName _ -> false))
    || addresses |> List.exists (fun a -> matchesAddress rule (canonical a) port)

/// The `tls.required` rule that covers this destination (the requested name, or any address it resolved to), if any.
let tlsRequirement (policy: DestinationPolicy) (host: HostName) (addresses: IPAddress list) (port: int) =
    policy.TlsRequired |> List.tryFind (fun rule -> matchesAny rule [ host ] addresses port) |> Option.map (fun r -> r.Text)

/// The `tls.required` rule that covers an SSH tunnel's target, which the SSH server resolves, if any.
/// `known`: the target's addresses when they need no resolver (an IP literal, `localhost`), else None.
/// A name rule is judged on the name; an address rule on the known addresses — and, when they are not
/// known, it covers the name (for its ports): the name may lead there, and only the SSH server would know.
let tunnelTlsRequirement (policy: DestinationPolicy) (host: HostName) (known: IPAddress list option) (port: int) =
    let covers rule =
        match known, rule.Pattern with
        | Some addresses, _ -> matchesAny rule [ host ] addresses port
        | None, Addresses _ -> portMatches rule port
        | None, (Name _ | Suffix _) -> matchesName rule host port
        | None, Exactly _ -> false
    policy.TlsRequired |> List.tryFind covers |> Option.map (fun r -> r.Text)

/// The certificate pins for a TLS connection to this destination: of every pin rule that matches the
/// requested name, the TLS server name, or an address. Empty: no pinning.
let pinsFor (policy: DestinationPolicy) (hosts: HostName list) (addresses: IPAddress list) (port: int) =
    policy.Pins |> List.filter (fun (rule, _) -> matchesAny rule hosts addresses port) |> List.collect snd |> List.distinct

/// Does `rule` match a name or address a certificate presents (a subjectAltName entry)? A wildcard
/// `*.domain` matches the rules of every name it is valid for (one label under the domain).
let private presents rule (presented: string) port =
    if presented.StartsWith "*." then
        match HostName.normalizeName (presented.Substring 2) with
        | Ok domain ->
            let under = "." + domain
            match rule.Pattern with
            | Name n -> n.EndsWith under && not (n.Substring(0, n.Length - under.Length).Contains '.') && portMatches rule port
            | Suffix s -> under.EndsWith s && portMatches rule port
            | Addresses _ | Exactly _ -> false
        | Error _ -> false
    else
        match HostName.parse presented with
        | Ok host -> matchesAny rule [ host ] [] port
        | Error _ -> false

/// The pins of every pin rule that matches a name or address the certificate presents: a certificate
/// that names a pinned destination must match that destination's pins, whatever the client asked for.
let pinsForCertificate (policy: DestinationPolicy) (presentedNames: string list) (port: int) =
    policy.Pins
    |> List.filter (fun (rule, _) -> presentedNames |> List.exists (fun name -> presents rule name port))
    |> List.collect snd
    |> List.distinct

/// The `tls.required` rule that lists this destination (a Unix path, a named peer) exactly, if any.
let peerTlsRequirement (policy: DestinationPolicy) (destination: Destination) =
    policy.TlsRequired |> List.tryFind (fun rule -> matchesPeer rule destination) |> Option.map (fun r -> r.Text)

/// The certificate pins for a TLS connection to a destination that is not a host name: of every pin
/// rule that lists it exactly or matches the TLS server name.
let peerPins (policy: DestinationPolicy) (destination: Destination) (serverNames: HostName list) =
    policy.Pins
    |> List.filter (fun (rule, _) -> matchesPeer rule destination || matchesAny rule serverNames [] 0)
    |> List.collect snd
    |> List.distinct
