/// The JSON wire format: client frames in (Utf8JsonReader), responses out (Utf8JsonWriter).
/// Parse, don't validate: a frame becomes a typed `Request`, and every way it can be wrong
/// becomes a `Rejected(BadRequest "…")` with words for a person, never an exception.
module Ws2s.Protocol.Codec

open System
open System.Buffers
open System.Buffers.Text
open System.Text
open System.Text.Encodings.Web
open System.Text.Json

/// The `data` field: where its text sits in the frame (no escapes: the common case, decoded in place),
/// or the unescaped string.
type private Data =
    | InFrame of start: int * length: int
    | Unescaped of string

type private Fields =
    { mutable Command: string option
      mutable Host: string option
      mutable Port: int64 option
      mutable Data: Data option
      mutable Binary: bool option
      mutable SshHost: string option
      mutable SshPort: int64 option
      mutable SshUsername: string option
      mutable SshPassword: string option
      mutable SshPrivateKey: string option
      mutable SshPrivateKeyPassword: string option
      mutable Tls: bool option
      mutable TlsServerName: string option; mutable Udp: bool option
      mutable Resumable: bool option
      mutable Token: string option
      mutable Received: int64 option }

exception private Bad of string

let private strictUtf8 = UTF8Encoding(false, true)

let private quote (text: string) =
    let shown = if text.Length > 40 then text.Substring(0, 40) + "…" else text
    "'" + shown + "'"

let private readString (reader: byref<Utf8JsonReader>) (name: string) =
    if reader.TokenType <> JsonTokenType.String then raise (Bad $"field '{name}' must be a string")
    try reader.GetString() with :? InvalidOperationException -> raise (Bad $"field '{name}' is not valid UTF-8")

/// An optional string field: null means absent, as ws2s.js omits or nulls what it was not given.
let private optionalString (reader: byref<Utf8JsonReader>) (name: string) =
    if reader.TokenType = JsonTokenType.Null then None else Some(readString &reader name)

/// A true/false field: null means false, as ws2s.js sends what it was not given.
let private readFlag (reader: byref<Utf8JsonReader>) (name: string) =
    match reader.TokenType with
    | JsonTokenType.True -> true
    | JsonTokenType.False | JsonTokenType.Null -> false
    | _ -> raise (Bad $"field '{name}' must be true or false")

let private readFields (frame: ReadOnlySpan<byte>) =
    let mutable seen = 0 // one bit per known field, to refuse a field given twice
    let once bit name =
        if seen &&& bit <> 0 then raise (Bad $"duplicate field {quote name}")
        seen <- seen ||| bit
    let fields =
        { Command = None; Host = None; Port = None; Data = None; Binary = None; SshHost = None; SshPort = None
          SshUsername = None; SshPassword = None; SshPrivateKey = None; SshPrivateKeyPassword = None; Tls = None
          TlsServerName = None; Udp = None; Resumable = None; Token = None; Received = None }

    let mutable reader = Utf8JsonReader(frame, JsonReaderOptions(MaxDepth = 16))
    if not (reader.Read()) then raise (Bad "empty frame")
    if reader.TokenType <> JsonTokenType.StartObject then raise (Bad "request must be a JSON object")
    let mutable finished = false
    while not finished do
        reader.Read() |> ignore
        if reader.TokenType = JsonTokenType.EndObject then
            finished <- true
        else
            let name = reader.GetString()
            reader.Read() |> ignore
            match name with
            | "command" -> once 1 name; fields.Command <- Some(readString &reader name)
            | "host" -> once 2 name; fields.Host <- Some(readString &reader name)
            | "data" ->
                once 4 name
                if reader.TokenType <> JsonTokenType.String then raise (Bad "field 'data' must be a string")
                fields.Data <-
                    if reader.ValueIsEscaped then Some(Unescaped(readString &reader name))
                    else Some(InFrame(int reader.TokenStartIndex + 1, reader.ValueSpan.Length))
            | "port" ->
                once 8 name
                let mutable port = 0L
                match reader.TokenType with
                | JsonTokenType.Null -> () // as absent: a unix: host has none (a host:port still needs one)
                | JsonTokenType.Number when reader.TryGetInt64(&port) -> fields.Port <- Some port
                | _ -> raise (Bad "port must be an integer 1-65535")
            | "binary" -> once 16 name; fields.Binary <- Some(readFlag &reader name)
            | "ssh_host" -> once 32 name; fields.SshHost <- optionalString &reader name
            | "ssh_username" -> once 64 name; fields.SshUsername <- optionalString &reader name
            | "ssh_password" -> once 128 name; fields.SshPassword <- optionalString &reader name
            | "ssh_private_key" -> once 256 name; fields.SshPrivateKey <- optionalString &reader name
            | "ssh_private_key_password" -> once 512 name; fields.SshPrivateKeyPassword <- optionalString &reader name
            | "ssh_port" ->
                once 1024 name
                let mutable port = 0L
                match reader.TokenType with
                | JsonTokenType.Null -> ()
                | JsonTokenType.Number when reader.TryGetInt64(&port) -> fields.SshPort <- Some port
                | _ -> raise (Bad "ssh_port must be an integer 1-65535")
            | "tls" -> once 2048 name; fields.Tls <- Some(readFlag &reader name)
            | "tlsServerName" -> once 4096 name; fields.TlsServerName <- optionalString &reader name
            | "udp" -> once 8192 name; fields.Udp <- Some(readFlag &reader name)
            | "resumable" -> once 16384 name; fields.Resumable <- Some(readFlag &reader name)
            | "token" -> once 32768 name; fields.Token <- Some(readString &reader name)
            | "received" ->
                once 65536 name
                let mutable received = 0L
                match reader.TokenType with
                | JsonTokenType.Number when reader.TryGetInt64(&received) && received >= 0L -> fields.Received <- Some received
                | _ -> raise (Bad "received must be a whole number of bytes, 0 or more")
            | _ -> reader.Skip()
    let trailing = try reader.Read() with :? JsonException -> true
    if trailing then raise (Bad "unexpected content after the JSON object")
    fields

let private require (value: 'a option) (name: string) =
    match value with
    | Some v -> v
    | None -> raise (Bad $"missing field '{name}'")

/// The bytes `send` writes: the text's UTF-8, straight from the frame when it needed no unescaping.
let private textBytes (frame: ReadOnlySpan<byte>) (data: Data) =
    match data with
    | InFrame(start, length) ->
        let utf8 = frame.Slice(start, length)
        if not (Unicode.Utf8.IsValid utf8) then raise (Bad "field 'data' is not valid UTF-8")
        utf8.ToArray()
    | Unescaped text ->
        try strictUtf8.GetBytes text with :? EncoderFallbackException -> raise (Bad "data is not valid Unicode text")

/// The bytes `sendb` writes: base64 decoded straight from the frame when it needed no unescaping.
let private base64Bytes (frame: ReadOnlySpan<byte>) (data: Data) =
    let fail () = raise (Bad "data must be standard base64")
    match data with
    | InFrame(start, length) ->
        let encoded = frame.Slice(start, length)
        // Every byte of it is written before it is read: no need to zero 16 KiB per message first.
        let buffer = GC.AllocateUninitializedArray<byte> (Base64.GetMaxDecodedFromUtf8Length length)
        let mutable consumed = 0
        let mutable written = 0
        if Base64.DecodeFromUtf8(encoded, Span buffer, &consumed, &written) <> OperationStatus.Done then fail ()
        ReadOnlyMemory(buffer, 0, written)
    | Unescaped text ->
        let buffer = GC.AllocateUninitializedArray<byte> (text.Length * 3 / 4 + 3)
        let mutable written = 0
        if not (Convert.TryFromBase64String(text, Span buffer, &written)) then fail ()
        ReadOnlyMemory(buffer, 0, written)

/// A host field, parsed once (see `HostName`): an IP literal or a DNS name, else code 7 saying why.
let private parseHost (field: string) (text: string) =
    match HostName.parse text with
    | Ok host -> host
    | Error reason -> raise (Bad $"{field} must be a host name or IP address: {reason}")

/// The `host` field (with `port`, for a host name or IP address) as a destination: `unix:/path` and
/// `scheme:name` take no port; anything else is a host, which needs one.
let private parseDestination (fields: Fields) =
    let text = require fields.Host "host"
    match Destinations.tryParse text with
    | Some(Error reason) -> raise (Bad $"host: {reason}")
    | Some(Ok destination) ->
        if fields.Port.IsSome then raise (Bad $"a {text.Substring(0, text.IndexOf ':')}: host takes no port")
        destination
    | None ->
        let host = parseHost "host" text
        match Port.TryCreate(require fields.Port "port") with
        | ValueSome port -> TcpPeer(host, port)
        | ValueNone -> raise (Bad "port must be an integer 1-65535")

let private toRequest (frame: ReadOnlySpan<byte>, fields: Fields) =
    match require fields.Command "command" with
    | "connect" ->
        let destination = parseDestination fields
        let ssh =
            match fields.SshHost with
            | Some sshHost when sshHost <> "" ->
                let sshHost = parseHost "ssh_host" sshHost
                let sshPort =
                    match Port.TryCreate(defaultArg fields.SshPort 22L) with
                    | ValueSome p -> p
                    | ValueNone -> raise (Bad "ssh_port must be an integer 1-65535")
                let username = require fields.SshUsername "ssh_username"
                let given (value: string option) = value |> Option.filter (fun v -> v <> "")
                if (given fields.SshPassword).IsNone && (given fields.SshPrivateKey).IsNone then
                    raise (Bad "an SSH tunnel needs ssh_password or ssh_private_key")
                Some
                    { Host = sshHost
                      Port = sshPort
                      Username = username
                      Password = given fields.SshPassword
                      PrivateKey = given fields.SshPrivateKey
                      PrivateKeyPassword = given fields.SshPrivateKeyPassword }
            | _ -> None
        if ssh.IsSome && destination.Host.IsNone then raise (Bad "an SSH tunnel leads to a host and port, not to a unix: path")
        let tls =
            match fields.Tls, fields.TlsServerName, destination.Host with
            | Some true, Some name, _ -> Some { ServerName = parseHost "tlsServerName" name }
            | Some true, None, Some host -> Some { ServerName = host }
            | Some true, None, None -> raise (Bad "tls to a unix: socket needs tlsServerName (the name its certificate is checked against)")
            | _, Some _, _ -> raise (Bad "tlsServerName needs \"tls\": true")
            | _ -> None
        let destination = match fields.Udp, destination with
                          | Some true, _ when ssh.IsSome || tls.IsSome -> raise (Bad(if ssh.IsSome then "udp cannot go through an SSH tunnel" else "udp cannot be tls"))
                          | Some true, TcpPeer(host, port) -> UdpPeer(host, port)
                          | Some true, _ -> raise (Bad "udp leads to a host and port, not to a unix: or named peer")
                          | _ -> destination
        Valid(Connect { Destination = destination; Binary = defaultArg fields.Binary false; Ssh = ssh; Tls = tls; Resumable = defaultArg fields.Resumable false })
    | "send" -> Valid(Send(ReadOnlyMemory(textBytes frame (require fields.Data "data"))))
    | "sendb" -> Valid(SendBytes(base64Bytes frame (require fields.Data "data")))
    | "close" -> Valid Close
    | "shutdown" -> Valid Shutdown
    | "ping" -> Valid Ping
    | "starttls" -> Valid(StartTls(fields.TlsServerName |> Option.map (parseHost "tlsServerName")))
    | "ack" -> Valid(Ack(require fields.Received "received"))
    | "resume" -> Valid(Resume(ResumeToken.Of(require fields.Token "token"), require fields.Received "received"))
    | other -> raise (Bad $"unknown command {quote other}")

/// Turns one client text frame into a request. Total: every input yields a `Request`.
let parseRequest (frame: ReadOnlySpan<byte>) : Request =
    try
        toRequest (frame, readFields frame)
    with
    | Bad reason -> Rejected(BadRequest reason)
    | :? JsonException -> Rejected(BadRequest "invalid JSON")
    | :? InvalidOperationException -> Rejected(BadRequest "invalid JSON")

let private success = JsonEncodedText.Encode "success"
let private code = JsonEncodedText.Encode "code"
let private message = JsonEncodedText.Encode "message"
let private data = JsonEncodedText.Encode "data"
let private taken = JsonEncodedText.Encode "taken"
let private replayed = JsonEncodedText.Encode "replayed"
let private resume = JsonEncodedText.Encode "resume"

/// Does the answer carry the session's resume token (which the driver holds, never the core)?
let carriesToken (response: Response) =
    match response with
    | ConnectedResumable | ResumeDone _ -> true
    | _ -> false

/// Writer options for responses: no indentation, and only the escaping JSON requires
/// (messages keep their apostrophes, as the original's did).
let writerOptions = JsonWriterOptions(Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = true)

/// Writes one response as `{"success":…,"code":…,"message":…[,"data":…][,"taken":…[,"replayed":…]][,"resume":…]}`, fields in that order;
/// `token`: the session's resume token, for the answers that carry it (`carriesToken`).
let writeAnswer (writer: Utf8JsonWriter) (response: Response) (token: string) =
    writer.WriteStartObject()
    writer.WriteBoolean(success, response.Success)
    writer.WriteNumber(code, response.Code)
    writer.WriteString(message, response.Message)
    match response with
    | RecvData bytes -> writer.WriteBase64String(data, bytes.Span)
    | AckDone count -> writer.WriteNumber(taken, count)
    | ResumeDone(count, again) ->
        writer.WriteNumber(taken, count)
        writer.WriteNumber(replayed, again)
    | _ -> ()
    if carriesToken response then writer.WriteString(resume, token)
    writer.WriteEndObject()
    writer.Flush()

/// Writes one response that carries no resume token (see `writeAnswer`).
let writeResponse (writer: Utf8JsonWriter) (response: Response) = writeAnswer writer response ""

/// One response as UTF-8 JSON bytes (for tests and the occasional control message).
let responseBytes (response: Response) : byte[] =
    let buffer = ArrayBufferWriter<byte>()
    use writer = new Utf8JsonWriter(buffer, writerOptions)
    writeResponse writer response
    buffer.WrittenSpan.ToArray()
