/// Destinations that are not host names, as written: `unix:/run/app.sock` and `scheme:name`. One
/// parser for the client's `host` field, the config's rules and websockify's targets, so what a rule
/// lists and what a client asks for are compared as the same text: a path that is not already in its
/// one plain form is refused here, never normalised (no `..` can walk onto a listed path).
module Ws2s.Protocol.Destinations

open System
open System.Text

/// The longest path a Unix-domain socket address holds (Linux `sun_path`: 108 bytes with its NUL).
[<Literal>]
let MaxPathBytes = 107

/// The longest name of a named peer (`scheme:name`).
[<Literal>]
let MaxNameLength = 200

let private strictUtf8 = UTF8Encoding(false, true)

/// A Unix-socket path in its one plain form, or why not: absolute, no empty, `.` or `..` segment, no
/// trailing `/`, no NUL or other control character, at most 107 bytes of UTF-8. Compared byte for byte
/// (case-sensitive), as the kernel compares it.
let parsePath (text: string) : Result<string, string> =
    let plain = "a unix: path must be a plain absolute path (starting with '/', without '.', '..', '//' or a trailing '/')"
    if isNull text || not (text.StartsWith '/') then Error plain
    elif text |> Seq.exists Char.IsControl then Error "a unix: path cannot contain NUL or other control characters"
    elif text.Substring(1).Split('/') |> Array.exists (fun segment -> segment = "" || segment = "." || segment = "..") then Error plain
    else
        match (try Some(strictUtf8.GetByteCount text) with :? EncoderFallbackException -> None) with
        | None -> Error "a unix: path must be valid Unicode text"
        | Some bytes when bytes > MaxPathBytes -> Error $"a unix: path is at most {MaxPathBytes} bytes long"
        | Some _ -> Ok text

/// A scheme of a named peer: a lower-case letter, then lower-case letters and digits (no dots, so
/// `example.com:80` is never taken for one).
let isScheme (text: string) =
    text.Length >= 1 && text.Length <= 16 && Char.IsAsciiLetterLower text[0]
    && text |> Seq.forall (fun c -> Char.IsAsciiLetterLower c || Char.IsAsciiDigit c)

/// Digits and one '-': a port or port range, which `host:port` means (never a named peer's name).
let private looksLikePorts (text: string) = text |> Seq.forall (fun c -> Char.IsAsciiDigit c || c = '-')

/// `scheme:name` split, when `text` has that form (one colon: IPv6 addresses and blocks have more) and
/// is not a Unix path (`unix:` always means a path).
let private schemeOf (text: string) =
    match text.IndexOf ':' with
    | colon when colon > 0 && isScheme (text.Substring(0, colon)) && text.Substring(0, colon) <> "unix" && text.IndexOf(':', colon + 1) < 0 ->
        Some(text.Substring(0, colon), text.Substring(colon + 1))
    | _ -> None

/// The schemes of ws2s's own hops (`Hop.Scheme`): never a named peer's, for the connector registered for one
/// carries out that hop only (a listed `tcp:db` once reached the TCP connector as a named hop, which it cannot dial).
let reservedSchemes = set [ "tcp"; "udp"; "ssh"; "unix" ]

/// A named peer's name: 1-200 visible ASCII characters other than quotes, backslashes, brackets and colons, not a port number.
let private parseName (scheme: string) (name: string) =
    if reservedSchemes.Contains scheme then Error $"{scheme}: is not a named peer: give a host in \"host\" and its port in \"port\""
    elif name = "" then Error $"the {scheme}: destination has no name"
    elif looksLikePorts name then Error "write the port in \"port\", not after the host"
    elif name.Length > MaxNameLength then Error $"the {scheme}: name is longer than {MaxNameLength} characters"
    elif name |> Seq.exists (fun c -> c <= ' ' || c > '~' || c = '"' || c = '\\' || c = '[' || c = ']') then
        Error $"the {scheme}: name may only contain visible ASCII characters other than quotes, backslashes and brackets"
    else Ok(NamedPeer(scheme, name))

/// A destination that is not a host name, as written (`unix:/path`, `scheme:name`): Some result, or
/// None when the text is meant as a host name or IP address (parse it with `HostName.parse`).
let tryParse (text: string) : Result<Destination, string> option =
    if isNull text then None
    elif text.StartsWith("unix:", System.StringComparison.Ordinal) then Some(parsePath (text.Substring 5) |> Result.map UnixPeer)
    else
        match schemeOf text with
        | Some _ when (HostName.parse text).IsOk -> None // an IPv6 literal such as fe80::1
        | Some(scheme, name) -> Some(parseName scheme name)
        | None -> None

/// Is this text a rule for a destination that is not a host name (`unix:/path`, `scheme:name` whose
/// name is not a port range)? `host:port` rules keep their meaning.
let isPeerRule (text: string) =
    text.StartsWith("unix:", System.StringComparison.Ordinal)
    || (match schemeOf text with
        | Some(_, name) -> not (looksLikePorts name) && (HostName.parse text).IsError
        | None -> false)
