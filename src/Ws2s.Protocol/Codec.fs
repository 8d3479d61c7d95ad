/// The JSON wire format: client frames in (Utf8JsonReader), responses out (Utf8JsonWriter).
/// Parse, don't validate: a frame becomes a typed `Request`, and every way it can be wrong
/// becomes a `Rejected(BadRequest "…")` with words for a person, never an exception.
module Ws2s.Protocol.Codec

open System
open System.Buffers
open System.Text
open System.Text.Encodings.Web
open System.Text.Json

type private Fields =
    { mutable Command: string option
      mutable Host: string option
      mutable Port: int64 option
      mutable Data: string option
      mutable Binary: bool option
      mutable SshHost: string option }

exception private Bad of string

let private strictUtf8 = UTF8Encoding(false, true)

/// Longest host name accepted (DNS names are at most 253 characters; a bracketed IPv6 literal is shorter).
[<Literal>]
let MaxHostLength = 255

let private quote (text: string) =
    let shown = if text.Length > 40 then text.Substring(0, 40) + "…" else text
    "'" + shown + "'"

let private readString (reader: byref<Utf8JsonReader>) (name: string) =
    if reader.TokenType <> JsonTokenType.String then raise (Bad $"field '{name}' must be a string")
    try reader.GetString() with :? InvalidOperationException -> raise (Bad $"field '{name}' is not valid UTF-8")

let private readFields (frame: ReadOnlySpan<byte>) =
    let fields = { Command = None; Host = None; Port = None; Data = None; Binary = None; SshHost = None }
    let mutable reader = Utf8JsonReader(frame, JsonReaderOptions(MaxDepth = 16))
    if not (reader.Read()) then raise (Bad "empty frame")
    if reader.TokenType <> JsonTokenType.StartObject then raise (Bad "request must be a JSON object")
    let seen = Collections.Generic.HashSet<string>()
    let mutable finished = false
    while not finished do
        reader.Read() |> ignore
        if reader.TokenType = JsonTokenType.EndObject then
            finished <- true
        else
            let name = reader.GetString()
            if not (seen.Add name) then raise (Bad $"duplicate field {quote name}")
            reader.Read() |> ignore
            match name with
            | "command" -> fields.Command <- Some(readString &reader name)
            | "host" -> fields.Host <- Some(readString &reader name)
            | "data" -> fields.Data <- Some(readString &reader name)
            | "port" ->
                let mutable port = 0L
                if reader.TokenType <> JsonTokenType.Number || not (reader.TryGetInt64(&port)) then
                    raise (Bad "port must be an integer 1-65535")
                fields.Port <- Some port
            | "binary" ->
                match reader.TokenType with
                | JsonTokenType.True -> fields.Binary <- Some true
                | JsonTokenType.False | JsonTokenType.Null -> fields.Binary <- Some false
                | _ -> raise (Bad "field 'binary' must be true or false")
            | "ssh_host" ->
                match reader.TokenType with
                | JsonTokenType.Null -> ()
                | _ -> fields.SshHost <- Some(readString &reader name)
            | _ -> reader.Skip()
    let trailing = try reader.Read() with :? JsonException -> true
    if trailing then raise (Bad "unexpected content after the JSON object")
    fields

let private require (value: 'a option) (name: string) =
    match value with
    | Some v -> v
    | None -> raise (Bad $"missing field '{name}'")

let private toRequest (fields: Fields) =
    match require fields.Command "command" with
    | "connect" ->
        let host = require fields.Host "host"
        if String.IsNullOrWhiteSpace host || host.Length > MaxHostLength || host |> Seq.exists Char.IsWhiteSpace then
            raise (Bad "host must be a host name or IP address")
        let port =
            match Port.TryCreate(require fields.Port "port") with
            | ValueSome p -> p
            | ValueNone -> raise (Bad "port must be an integer 1-65535")
        match fields.SshHost with
        | Some ssh when ssh <> "" -> Rejected(SshFailed "ssh tunnels are not enabled on this server")
        | _ -> Valid(Connect { Host = host; Port = port; Binary = defaultArg fields.Binary false })
    | "send" ->
        let data = require fields.Data "data"
        let bytes = try strictUtf8.GetBytes data with :? EncoderFallbackException -> raise (Bad "data is not valid Unicode text")
        Valid(Send(ReadOnlyMemory bytes))
    | "sendb" ->
        let data = require fields.Data "data"
        let buffer = Array.zeroCreate<byte> (data.Length * 3 / 4 + 3)
        let mutable written = 0
        if not (Convert.TryFromBase64String(data, Span buffer, &written)) then
            raise (Bad "data must be standard base64")
        Valid(SendBytes(ReadOnlyMemory(buffer, 0, written)))
    | "close" -> Valid Close
    | "shutdown" -> Valid Shutdown
    | "ping" -> Valid Ping
    | other -> raise (Bad $"unknown command {quote other}")

/// Turns one client text frame into a request. Total: every input yields a `Request`.
let parseRequest (frame: ReadOnlySpan<byte>) : Request =
    try
        toRequest (readFields frame)
    with
    | Bad reason -> Rejected(BadRequest reason)
    | :? JsonException -> Rejected(BadRequest "invalid JSON")
    | :? InvalidOperationException -> Rejected(BadRequest "invalid JSON")

let private success = JsonEncodedText.Encode "success"
let private code = JsonEncodedText.Encode "code"
let private message = JsonEncodedText.Encode "message"
let private data = JsonEncodedText.Encode "data"

/// Writer options for responses: no indentation, and only the escaping JSON requires
/// (messages keep their apostrophes, as the original's did).
let writerOptions = JsonWriterOptions(Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = true)

/// Writes one response as `{"success":…,"code":…,"message":…[,"data":…]}`, fields in that order.
let writeResponse (writer: Utf8JsonWriter) (response: Response) =
    writer.WriteStartObject()
    writer.WriteBoolean(success, response.Success)
    writer.WriteNumber(code, response.Code)
    writer.WriteString(message, response.Message)
    match response with
    | RecvData bytes -> writer.WriteBase64String(data, bytes.Span)
    | _ -> ()
    writer.WriteEndObject()
    writer.Flush()

/// One response as UTF-8 JSON bytes (for tests and the occasional control message).
let responseBytes (response: Response) : byte[] =
    let buffer = ArrayBufferWriter<byte>()
    use writer = new Utf8JsonWriter(buffer, writerOptions)
    writeResponse writer response
    buffer.WrittenSpan.ToArray()
