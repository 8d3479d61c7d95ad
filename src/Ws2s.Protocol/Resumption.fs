/// What a resumable connection keeps so that its client can come back on another WebSocket (spec/protocol.md,
/// Resumable sessions): the peer's bytes the client may not have had, counted from the connect, and the counts that let
/// each side say where it is. Pure values; the session (Session.fs) decides when each function applies.
module Ws2s.Protocol.Resumption

open System

/// How the server resumes: `GraceSeconds` a session waits suspended for its client (0: resumption is off);
/// `MaxBufferedBytes` the peer's bytes it keeps for one.
type ResumeSettings = { GraceSeconds: int; MaxBufferedBytes: int }

let defaultSettings = { GraceSeconds = 30; MaxBufferedBytes = 1 <<< 20 }

/// The peer's bytes from offset `From` (counted from the connect) to `From + Length`, oldest first: `Older` in order,
/// then `Newer` newest first (a queue of two lists). Each chunk is the kept's own copy.
type Kept =
    { From: int64
      Length: int64
      Older: ReadOnlyMemory<byte> list
      Newer: ReadOnlyMemory<byte> list }
    /// The offset after the last byte: every peer byte the session has had for its client.
    member this.Sent = this.From + this.Length

let private empty = { From = 0L; Length = 0L; Older = []; Newer = [] }

/// Kept with a copy of `bytes` after what it held.
let keep (bytes: ReadOnlySpan<byte>) (kept: Kept) =
    if bytes.IsEmpty then kept
    else { kept with Length = kept.Length + int64 bytes.Length; Newer = ReadOnlyMemory(bytes.ToArray()) :: kept.Newer }

/// Kept without its bytes before offset `offset` (at most all of them).
let dropBefore (offset: int64) (kept: Kept) =
    let rec go (kept: Kept) =
        let excess = min offset kept.Sent - kept.From
        if excess <= 0L then kept
        else
            match kept.Older, kept.Newer with
            | [], [] -> kept
            | [], newer -> go { kept with Older = List.rev newer; Newer = [] }
            | first :: rest, _ when int64 first.Length <= excess ->
                go { kept with From = kept.From + int64 first.Length; Length = kept.Length - int64 first.Length; Older = rest }
            | first :: rest, _ ->
                let cut = int excess
                { kept with From = kept.From + excess; Length = kept.Length - excess; Older = first.Slice cut :: rest }
    go kept

/// The kept bytes from offset `offset` on, oldest first (`offset` within From..Sent).
let from (offset: int64) (kept: Kept) : ReadOnlyMemory<byte> list =
    let rest = dropBefore offset kept
    rest.Older @ List.rev rest.Newer

/// A resumable connection's record for its client: what it keeps of the peer's bytes; the offset the client said it has
/// had (`Acknowledged`, its last `ack`: never more than `Kept.Sent`, and never less than before); the client's data bytes
/// the session has carried out (`Taken`: `send`, `sendb`, binary frames, in order); and how the connection ended
/// (`PeerEnd`, code 5), once it has, for a client that may not have heard it; and how its bytes go to the client (`Binary`).
type Resumption =
    { Kept: Kept
      Acknowledged: int64
      Taken: int64
      PeerEnd: Response option
      Binary: bool }

/// A connection's record as it opens (in binary mode or not): nothing sent, nothing taken.
let opened binary = { Kept = empty; Acknowledged = 0L; Taken = 0L; PeerEnd = None; Binary = binary }

/// Why the client's `received` cannot be taken as its acknowledgement, if it cannot: it is above what was sent. (One below
/// an earlier one acknowledges nothing new: a client's acks may cross.)
let ackRefusal (received: int64) (resumption: Resumption) =
    if received > resumption.Kept.Sent then Some $"ack: received {received} is beyond the {resumption.Kept.Sent} bytes sent"
    else None

/// The client has had `received` bytes: what was kept before them goes.
let acknowledge (received: int64) (resumption: Resumption) =
    let received = max received resumption.Acknowledged
    { resumption with Acknowledged = received; Kept = dropBefore received resumption.Kept }

/// Why a client that has had `received` bytes cannot take the session over, if it cannot: the session no longer keeps
/// what follows them (or never sent them).
let resumeRefusal (received: int64) (resumption: Resumption) =
    let kept = resumption.Kept
    if received < kept.From || received > kept.Sent then
        Some $"the client has {received} bytes; the server keeps bytes {kept.From} to {kept.Sent}"
    else None
