/// Host names and IP literals, checked once at the edge so that what the policy judges is exactly
/// what the resolver and the dialler see. Every place that takes a host (the codec's `host` and
/// `ssh_host`, the config's rules and rawTargets, websockify token files) parses it here.
namespace Ws2s.Protocol

open System
open System.Globalization
open System.Net

/// What a host text means: an IP address (any spelling: `127.1`, `0x7f000001`, `[::1]`), or a DNS
/// name in its ASCII form (IDNs as `xn--…`), lower case, without a trailing dot.
type HostKind =
    | Literal of IPAddress
    | DnsName of string

/// A host name or IP literal as a client or the operator wrote it (`Written`, quoted in messages) and
/// what it means (`Kind`). The functions below are its module (C# sees it as `HostNameModule`).
[<CustomEquality; NoComparison>]
type HostName =
    { Written: string
      Kind: HostKind }
    /// The text to hand to a resolver or an SSH server: the ASCII name, or the address.
    member this.Canonical =
        match this.Kind with
        | Literal address -> address.ToString()
        | DnsName name -> name
    override this.ToString() = this.Written
    override this.Equals other =
        match other with
        | :? HostName as o -> o.Canonical = this.Canonical
        | _ -> false
    override this.GetHashCode() = this.Canonical.GetHashCode()

module HostName =
    /// The longest DNS name (RFC 1035: 255 octets on the wire, 253 as text).
    [<Literal>]
    let MaxNameLength = 253

    [<Literal>]
    let MaxLabelLength = 63

    let private idn = IdnMapping(AllowUnassigned = false, UseStd3AsciiRules = false)

    let private isNameChar (c: char) =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c = '-' || c = '_'

    /// An IP literal: bare, or an IPv6 address in brackets; one trailing dot is ignored.
    let private literal (text: string) =
        let text = if text.EndsWith '.' then text.Substring(0, text.Length - 1) else text
        let bare =
            if text.Length > 2 && text.StartsWith '[' && text.EndsWith ']' then text.Substring(1, text.Length - 2)
            else text
        // IPAddress.TryParse also takes a scope (`fe80::1%eth0`) and other decorations; the dialler must
        // never see something other than the address judged, so only plain forms pass.
        if bare = "" || bare |> Seq.exists (fun c -> not (Char.IsAsciiHexDigit c || c = '.' || c = ':' || c = 'x' || c = 'X')) then None
        else
            match IPAddress.TryParse bare with
            | true, address -> Some address
            | _ -> None

    /// The ASCII form of a DNS name, or why it is not one. No control characters, NUL, white space or
    /// punctuation other than `-` and `_`; no empty label; labels of at most 63 octets; at most 253 in all.
    let private dnsName (text: string) : Result<string, string> =
        if text |> Seq.exists (fun c -> Char.IsControl c || Char.IsWhiteSpace c) then
            Error "a host name cannot contain control characters or white space"
        else
            let text = if text.EndsWith '.' then text.Substring(0, text.Length - 1) else text
            if text = "" then Error "the host name is empty"
            elif text.Split('.') |> Array.exists ((=) "") then Error "the host name has an empty label"
            else
                let ascii =
                    try
                        Ok(idn.GetAscii(text).ToLowerInvariant())
                    with :? ArgumentException ->
                        Error "the host name is not a valid (internationalized) domain name"
                match ascii with
                | Error e -> Error e
                | Ok ascii when not (Seq.forall (fun c -> isNameChar c || c = '.') ascii) ->
                    Error "a host name may only contain letters, digits, '-', '_' and '.'"
                | Ok ascii when ascii.Length > MaxNameLength -> Error $"the host name is longer than {MaxNameLength} characters"
                | Ok ascii when ascii.Split('.') |> Array.exists (fun l -> l.Length > MaxLabelLength) ->
                    Error $"a label of the host name is longer than {MaxLabelLength} characters"
                | Ok ascii when ascii.Split('.') |> Array.exists ((=) "") -> Error "the host name has an empty label"
                | Ok ascii -> Ok ascii

    /// Parses a host as written: an IP literal, else a DNS name. Error: why, in words.
    let parse (text: string) : Result<HostName, string> =
        if isNull text || text = "" then Error "the host is empty"
        elif text.Length > MaxNameLength + 2 then Error $"the host name is longer than {MaxNameLength} characters"
        else
            match literal text with
            | Some address -> Ok { Written = text; Kind = Literal address }
            | None ->
                match dnsName text with
                | Ok name ->
                    // A name the resolver would take for an address (e.g. IDN digits) is judged as that address.
                    match literal name with
                    | Some address -> Ok { Written = text; Kind = Literal address }
                    | None -> Ok { Written = text; Kind = DnsName name }
                | Error e -> Error e

    /// The ASCII form of a name pattern (`example.com` in a rule, `.example.com` after `*`), or why not.
    let normalizeName (text: string) : Result<string, string> = dnsName text
