/// Wisp's packets (MercuryWorkshop's wisp-protocol, v1 and v2): one binary WebSocket message each,
/// `u8 type, u32 stream id, payload`, little-endian. Parsing is total: every byte string is a packet
/// or says why not, and which stream it names when it names one. spec/wisp.md has the table.
module Ws2s.Protocol.WispPacket

open System
open System.Buffers.Binary
open System.Text

/// Why a stream closes, as the one byte a CLOSE carries (the spec's names; `Other` keeps any other byte a client sends).
type CloseReason =
    | Unspecified
    | Voluntary
    | NetworkError
    | IncompatibleExtensions
    | Invalid
    | Unreachable
    | TimedOut
    | Refused
    | TransferTimedOut
    | Blocked
    | Throttled
    | ClientError
    /// The credentials (password extension) were refused.
    | BadPassword
    /// The server requires credentials and the client gave none.
    | AuthRequired
    | Other of byte
    member this.Code =
        match this with
        | Unspecified -> 0x01uy
        | Voluntary -> 0x02uy
        | NetworkError -> 0x03uy
        | IncompatibleExtensions -> 0x04uy
        | Invalid -> 0x41uy
        | Unreachable -> 0x42uy
        | TimedOut -> 0x43uy
        | Refused -> 0x44uy
        | TransferTimedOut -> 0x47uy
        | Blocked -> 0x48uy
        | Throttled -> 0x49uy
        | ClientError -> 0x81uy
        | BadPassword -> 0xc0uy
        | AuthRequired -> 0xc2uy
        | Other code -> code
    static member OfCode(code: byte) =
        [ Unspecified; Voluntary; NetworkError; IncompatibleExtensions; Invalid; Unreachable; TimedOut; Refused
          TransferTimedOut; Blocked; Throttled; ClientError; BadPassword; AuthRequired ]
        |> List.tryFind (fun r -> r.Code = code)
        |> Option.defaultValue (Other code)

/// One entry of an INFO packet: an extension's id and its metadata.
type Extension = { Id: byte; Payload: ReadOnlyMemory<byte> }

/// Extension ids (v2): UDP, password auth, key auth, server MOTD, stream-open confirmation.
module ExtensionId =
    [<Literal>]
    let Udp = 0x01uy
    [<Literal>]
    let Password = 0x02uy
    [<Literal>]
    let KeyAuth = 0x03uy
    [<Literal>]
    let Motd = 0x04uy
    [<Literal>]
    let StreamConfirmation = 0x05uy

type Packet =
    /// Open stream `Stream` of `Kind` (1 TCP, 2 UDP; other bytes are kept, and refused later) to `Host`:`Port` (not yet judged).
    | Connect of Stream: uint32 * Kind: byte * Port: uint16 * Host: string
    | Data of Stream: uint32 * Payload: ReadOnlyMemory<byte>
    /// The sender can take `Credits` more DATA packets on the stream (the server's grant).
    | Continue of Stream: uint32 * Credits: uint32
    | Close of Stream: uint32 * Reason: CloseReason
    /// v2's handshake: the sender's version and extensions.
    | Info of Stream: uint32 * Major: byte * Minor: byte * Extensions: Extension list

/// A message that is not a packet: why, and the stream it names when its header was whole (a CONNECT
/// whose payload is cut short names its stream; it is refused on that stream alone).
type Malformed = { Stream: uint32 option; IsConnect: bool; Reason: string }

[<Literal>]
let HeaderBytes = 5

let private strictUtf8 = UTF8Encoding(false, true)

/// The most extension entries an INFO may carry (the spec defines five): more is not a client, and would cost a list
/// entry per 5 bytes of a message.
[<Literal>]
let MaxExtensions = 32

let rec private extensions (bytes: ReadOnlyMemory<byte>) acc =
    if bytes.IsEmpty then Ok(List.rev acc)
    elif List.length acc >= MaxExtensions then Error $"an INFO carries at most {MaxExtensions} extensions"
    elif bytes.Length < 5 then Error "an INFO extension entry is cut short"
    else
        let length = BinaryPrimitives.ReadUInt32LittleEndian(bytes.Span.Slice(1, 4))
        if int64 length > int64 (bytes.Length - 5) then Error "an INFO extension's payload runs past the packet"
        else
            let entry = { Id = bytes.Span[0]; Payload = bytes.Slice(5, int length) }
            extensions (bytes.Slice(5 + int length)) (entry :: acc)

/// The packet in one binary message, or why it is none.
let parse (message: ReadOnlyMemory<byte>) : Result<Packet, Malformed> =
    if message.Length < HeaderBytes then
        Error { Stream = None; IsConnect = false; Reason = $"a wisp packet has a 5-byte header; this message has {message.Length} bytes" }
    else
        let span = message.Span
        let stream = BinaryPrimitives.ReadUInt32LittleEndian(span.Slice(1, 4))
        let payload = message.Slice HeaderBytes
        let bad isConnect reason = Error { Stream = Some stream; IsConnect = isConnect; Reason = reason }
        match span[0] with
        | 0x01uy when payload.Length < 3 -> bad true "a CONNECT's payload is a stream type, a port and a host name"
        | 0x01uy ->
            let p = payload.Span
            match (try Ok(strictUtf8.GetString(p.Slice 3)) with :? DecoderFallbackException -> Error()) with
            | Ok host -> Ok(Connect(stream, p[0], BinaryPrimitives.ReadUInt16LittleEndian(p.Slice(1, 2)), host))
            | Error() -> bad true "a CONNECT's host name is not valid UTF-8"
        | 0x02uy -> Ok(Data(stream, payload))
        | 0x03uy when payload.Length < 4 -> bad false "a CONTINUE carries 4 bytes of credits"
        | 0x03uy -> Ok(Continue(stream, BinaryPrimitives.ReadUInt32LittleEndian payload.Span))
        | 0x04uy when payload.Length < 1 -> bad false "a CLOSE carries a reason byte"
        | 0x04uy -> Ok(Close(stream, CloseReason.OfCode payload.Span[0]))
        | 0x05uy when payload.Length < 2 -> bad false "an INFO carries a major and a minor version"
        | 0x05uy ->
            match extensions (payload.Slice 2) [] with
            | Ok entries -> Ok(Info(stream, payload.Span[0], payload.Span[1], entries))
            | Error reason -> bad false reason
        | other -> bad false $"unknown wisp packet type 0x{other:x2}"

let private packet (kind: byte) (stream: uint32) (payloadLength: int) =
    let bytes = GC.AllocateUninitializedArray<byte>(HeaderBytes + payloadLength)
    bytes[0] <- kind
    BinaryPrimitives.WriteUInt32LittleEndian(Span(bytes, 1, 4), stream)
    bytes

/// The credentials in a client's password extension, or None when they do not parse. Draft 6 says `u8 username length,
/// username, password (the rest)`; wisp-js and epoxy send draft 5's `u8 username length, u16 password length, username,
/// password`: a payload whose lengths add up as draft 5's is read so, any other as draft 6's.
let credentials (payload: ReadOnlyMemory<byte>) =
    let text (bytes: ReadOnlyMemory<byte>) = try Some(strictUtf8.GetString bytes.Span) with :? DecoderFallbackException -> None
    if payload.Length < 1 then None
    else
        let user = int payload.Span[0]
        let draft5 = payload.Length >= 3 && 3 + user + int (BinaryPrimitives.ReadUInt16LittleEndian(payload.Span.Slice(1, 2))) = payload.Length
        let userAt, passAt = if draft5 then 3, 3 + user else 1, 1 + user
        if passAt > payload.Length then None
        else
            match text (payload.Slice(userAt, user)), text (payload.Slice passAt) with
            | Some username, Some password -> Some { Username = username; Password = password }
            | _ -> None

/// Writes a DATA packet's header for `stream` into the first `HeaderBytes` of `header` (its payload follows them).
let writeDataHeader (header: Span<byte>) (stream: uint32) =
    header[0] <- 0x02uy
    BinaryPrimitives.WriteUInt32LittleEndian(header.Slice(1, 4), stream)

/// A DATA packet carrying `payload` (copied).
let data (stream: uint32) (payload: ReadOnlySpan<byte>) =
    let bytes = GC.AllocateUninitializedArray<byte>(HeaderBytes + payload.Length)
    writeDataHeader (Span bytes) stream
    payload.CopyTo(Span(bytes, HeaderBytes, payload.Length))
    ReadOnlyMemory bytes

let continueWith (stream: uint32) (credits: uint32) =
    let bytes = packet 0x03uy stream 4
    BinaryPrimitives.WriteUInt32LittleEndian(Span(bytes, HeaderBytes, 4), credits)
    ReadOnlyMemory bytes

let close (stream: uint32) (reason: CloseReason) =
    let bytes = packet 0x04uy stream 1
    bytes[HeaderBytes] <- reason.Code
    ReadOnlyMemory bytes

let connect (stream: uint32) (kind: byte) (port: uint16) (host: string) =
    let name = Encoding.UTF8.GetBytes host
    let bytes = packet 0x01uy stream (3 + name.Length)
    bytes[HeaderBytes] <- kind
    BinaryPrimitives.WriteUInt16LittleEndian(Span(bytes, HeaderBytes + 1, 2), port)
    name.CopyTo(bytes, HeaderBytes + 3)
    ReadOnlyMemory bytes

/// An INFO packet on stream 0: version `major`.`minor` and these extensions.
let info (major: byte) (minor: byte) (entries: Extension list) =
    let length = 2 + List.sumBy (fun e -> 5 + e.Payload.Length) entries
    let bytes = packet 0x05uy 0u length
    bytes[HeaderBytes] <- major
    bytes[HeaderBytes + 1] <- minor
    let mutable at = HeaderBytes + 2
    for e in entries do
        bytes[at] <- e.Id
        BinaryPrimitives.WriteUInt32LittleEndian(Span(bytes, at + 1, 4), uint32 e.Payload.Length)
        e.Payload.Span.CopyTo(Span(bytes, at + 5, e.Payload.Length))
        at <- at + 5 + e.Payload.Length
    ReadOnlyMemory bytes
