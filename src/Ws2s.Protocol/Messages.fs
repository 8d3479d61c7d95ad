/// What a client may ask, what the server answers, and what the session core consumes and produces:
/// the messages between the core, its clients and its driver (the runner, or a simulation). Pure values, no behaviour.
namespace Ws2s.Protocol

open System
open System.Net

/// A request that parsed. `Send` carries the UTF-8 bytes of its text, `SendBytes` the decoded base64.
type Command =
    | Connect of Route
    | Send of ReadOnlyMemory<byte>
    | SendBytes of ReadOnlyMemory<byte>
    | Close
    /// Half-close: send FIN to the peer, keep receiving until it closes.
    | Shutdown
    | Ping
    /// A binary frame from the client: bytes for the peer, answered only on failure.
    | Forward of ReadOnlyMemory<byte>
    /// Upgrade the open connection to TLS in place (SMTP/IMAP/POP3 STARTTLS, LDAP StartTLS); the
    /// server name defaults to the destination's host.
    | StartTls of serverName: HostName option
    /// The client has had `received` bytes of the peer's since the connect: what was kept before them may go (resumable connections).
    | Ack of received: int64
    /// Take over the suspended (or open) session that holds this token, having had `received` bytes of its peer's.
    | Resume of token: ResumeToken * received: int64
    /// The name the original protocol echoes in `"<name> done"`.
    member this.Name =
        match this with
        | Connect _ -> "connect"
        | Send _ -> "send"
        | SendBytes _ -> "sendb"
        | Close -> "close"
        | Shutdown -> "shutdown"
        | Ping -> "ping"
        | Forward _ -> "binary frame"
        | StartTls _ -> "starttls"
        | Ack _ -> "ack"
        | Resume _ -> "resume"

/// Why a TCP connection could not be opened, in words for a person.
type DialError =
    | ConnectionRefused
    | NetworkUnreachable
    | HostUnreachable
    | DialFailed of reason: string
    /// The server holds as many peer connections for this client as it may (a per-client limit); in words.
    | Throttled of reason: string
    /// The SSH hop failed (login, host key, channel), in words.
    | TunnelFailed of reason: string
    member this.Message =
        match this with
        | ConnectionRefused -> "connection refused"
        | NetworkUnreachable -> "network unreachable"
        | HostUnreachable -> "host unreachable"
        | DialFailed reason -> reason
        | Throttled reason -> reason
        | TunnelFailed reason -> reason

/// Every message the server sends on its own initiative or in answer to a request.
type Response =
    /// code 0: `"<command> done"`.
    | Done of command: string
    /// code -1: bytes from the peer, base64 in JSON mode.
    | RecvData of ReadOnlyMemory<byte>
    /// code 1: a bug; should never be seen.
    | Unexpected of reason: string
    /// code 2.
    | ConnectFailed of reason: string
    /// code 3.
    | IllegalSocketState
    /// code 4: the destination policy refused the host (rule names which rule refused it).
    | Forbidden of host: string * rule: string
    /// code 5: the peer closed (reason: None for an orderly close, Some for a reset or error).
    | ClosedByPeer of reason: string option
    /// code 6.
    | SshFailed of reason: string
    /// code 7 (new in ws2s for .NET).
    | BadRequest of reason: string
    /// code 8 (new in ws2s for .NET): the TLS handshake with the peer failed, in words.
    | TlsFailed of reason: string
    /// code 0, `connect done`, for a resumable connection: the driver adds the session's resume token (`"resume"`).
    | ConnectedResumable
    /// code 0, `ack done`: the client's data the session has taken since the connect (`"taken"`).
    | AckDone of taken: int64
    /// code 0, `resume done`, on the WebSocket that took the session over: what it has taken (`"taken"`) and how many
    /// kept bytes it sends again (`"replayed"`); the driver adds the session's new resume token.
    | ResumeDone of taken: int64 * replayed: int64
    /// code 9 (new in ws2s for .NET): a resume that cannot be honoured, in words.
    | ResumeFailed of reason: string
    member this.Success =
        match this with
        | Done _ | RecvData _ | ConnectedResumable | AckDone _ | ResumeDone _ -> true
        | _ -> false
    member this.Code =
        match this with
        | Done _ | ConnectedResumable | AckDone _ | ResumeDone _ -> 0
        | RecvData _ -> -1
        | Unexpected _ -> 1
        | ConnectFailed _ -> 2
        | IllegalSocketState -> 3
        | Forbidden _ -> 4
        | ClosedByPeer _ -> 5
        | SshFailed _ -> 6
        | BadRequest _ -> 7
        | TlsFailed _ -> 8
        | ResumeFailed _ -> 9
    member this.Message =
        match this with
        | Done command -> command + " done"
        | RecvData _ -> "recv data"
        | Unexpected reason -> "unexpected server error: " + reason
        | ConnectFailed reason -> reason
        | IllegalSocketState -> "illegal socket status, please connect again"
        | Forbidden(host, rule) -> $"ws2s refuse to connect target host: {host}, cause that's a dangerous operation ({rule})"
        | ClosedByPeer None -> "connection closed by peer"
        | ClosedByPeer(Some reason) -> "connection closed by peer: " + reason
        | SshFailed reason -> "failed to open ssh tunnel: " + reason
        | BadRequest reason -> "bad request: " + reason
        | TlsFailed reason -> "tls failed: " + reason
        | ConnectedResumable -> "connect done"
        | AckDone _ -> "ack done"
        | ResumeDone _ -> "resume done"
        | ResumeFailed reason -> "resume failed: " + reason

/// What the peer's certificate presents, reported by the driver once the certificate passed the checks
/// that need no policy (chain, name, validity, usage): facts for the core's pin check.
type PeerCertificate =
    { /// Its subjectAltName entries: DNS names as written (a wildcard as `*.example.com`) and IP addresses as text.
      Names: string list
      /// SHA-256 in base64 of the whole certificate (DER) and of its SubjectPublicKeyInfo.
      Hashes: string list }

/// A client frame, as the codec understood it: a command to carry out, or a request that is answered
/// at once with an error (a bad request, code 7, or an SSH tunnel this server does not offer, code 6).
type Request =
    | Valid of Command
    | Rejected of Response

/// Everything that can happen to a session. Connection events carry the generation of their connection.
type Input =
    /// A text frame from the client (UTF-8 JSON). The core is done with the memory when `step` returns.
    | ClientText of Frame: ReadOnlyMemory<byte>
    /// A binary frame from the client: raw bytes for the peer. The core may keep the memory.
    | ClientBinary of Bytes: ReadOnlyMemory<byte>
    /// The client closed its WebSocket (a close frame either way), or the session let it go: the session ends.
    | ClientGone
    /// The client's WebSocket ended without a close frame (a reset, a silent end, an unanswered keep-alive): a session
    /// with a resumable connection is suspended, any other ends as with `ClientGone`.
    | ClientLost
    /// The client's message grew past the size limit (more than `Limit` bytes arrived).
    | ClientMessageTooLarge of Limit: int
    /// Part of a client message arrived and the rest has not yet: the message must keep coming (no byte
    /// of it for `messageTimeoutSeconds` closes the session).
    | ClientMessageProgress
    /// The server is stopping: the session ends, and the client hears close 1001.
    | ServerStopping
    /// The runner hit a fault of its own (an unexpected exception, which it has logged): the session
    /// ends with code 1 (`Reason` in words, never a stack trace) and close 1011.
    | RunnerFault of Reason: string
    | Resolved of Generation: Generation * Addresses: IPAddress list
    | ResolveFailed of Generation: Generation
    | Dialled of Generation: Generation
    /// The TLS handshake the core asked for (`SecureConnection`) succeeded with this certificate; the
    /// core judges its pins, then the peer's bytes are plaintext from now on.
    | Secured of Generation: Generation * Certificate: PeerCertificate
    /// The TLS handshake failed (untrusted certificate, wrong name, expired, not a server's certificate, protocol error), in words.
    | SecureFailed of Generation: Generation * Reason: string
    | DialFailedWith of Generation: Generation * Error: DialError
    /// Bytes read from the peer. The core does not keep the memory beyond the effects of this step.
    | Received of Generation: Generation * Bytes: ReadOnlyMemory<byte>
    /// The peer finished sending (FIN).
    | PeerFinished of Generation: Generation
    /// The connection broke (reset, write failure); the words say how.
    | SocketFailed of Generation: Generation * Reason: string
    | WriteCompleted of Generation: Generation
    /// The credentials the session presented (`CheckCredentials`) admit it; `Scope`: the allow rules (as written) that narrow
    /// it, when its token has them.
    | CredentialsAccepted of Scope: string list option
    /// The credentials do not admit it: why, in words (never the secret).
    | CredentialsRefused of Reason: string
    /// Another client asks to take this session over (it presented the session's token), having had `Received` bytes of
    /// the peer's; the driver holds that client until the core says `TakeClient` or `RefuseResume`.
    | ResumeAsked of Received: int64
    /// The `HandOver` this session asked for cannot be honoured, in words (code 9).
    | ResumeRefused of Reason: string
    /// The `HandOver` this session asked for was honoured: its client now belongs to the session it resumed; this one ends
    /// without a word to it.
    | ResumedElsewhere
    /// The moment the core asked to be woken at (`Session.nextDeadline`) has come; the driver may also wake
    /// it early or late: the core acts on every deadline due by the `now` it is given, with any input.
    | Wake

/// Work the driver must do, in order.
/// What the driver counts and logs, decided here: it never re-reads replies to learn it.
type Observation =
    /// A connect was answered with `Code` (0 done, 2 failed, 4 refused, 6 SSH failed, 8 TLS failed), `Took`
    /// milliseconds after it began, if it got as far as a connection of its own (a refusal before any has none).
    | ConnectAnswered of Took: int64 option * Code: int
    /// A Wisp stream of `Kind` (`tcp` or `udp`) was accepted for its connect.
    | StreamOpened of Kind: string
    /// The client was lost and the session suspended (its connection kept for a resume).
    | Suspended
    /// A client took the session over (`TakeClient`), `Replayed` kept bytes sent to it again.
    | Resumed of Replayed: int64
    /// A suspended session's grace ended with no resume: it ended.
    | Expired

type Effect =
    /// Resolve a DNS name (validated ASCII, see `HostName`); report `Resolved` or `ResolveFailed`.
    | Resolve of Generation: Generation * Name: string
    /// Start one attempt at the hop (several may run at once for TCP: the first to connect wins);
    /// report `Dialled` or `DialFailedWith`.
    | Dial of Generation: Generation * Hop: Hop
    /// Run a TLS client handshake on the connection (SNI and certificate name `ServerName`). Bytes the
    /// peer sent before are reported first; then `Secured` with what the certificate presents (the
    /// core judges its pins) or `SecureFailed`. It has no time limit of its own: the core holds the deadline and
    /// closes the connection when it passes.
    | SecureConnection of Generation: Generation * ServerName: string
    /// Write bytes to the connection; report `WriteCompleted` or `SocketFailed`.
    | Write of Generation: Generation * Bytes: ReadOnlyMemory<byte>
    /// Close the connection (or abandon its resolve/dial) silently; later events of it are stale.
    | CloseConnection of Generation: Generation
    /// Send FIN: no more writes on this connection; keep reading.
    | ShutdownConnection of Generation: Generation
    /// Send a JSON text frame.
    | Reply of Response: Response
    /// Send the bytes as one binary frame (binary-mode connections).
    | ReplyBinary of Bytes: ReadOnlyMemory<byte>
    /// Send a Wisp DATA packet for `Stream` carrying `Payload` (a peer's bytes) as one binary frame, framed by the driver
    /// (`WispPacket.writeDataHeader`): in the payload's own buffer when it kept room for the header, the bytes uncopied.
    | ReplyWispData of Stream: uint32 * Payload: ReadOnlyMemory<byte>
    /// Close the client's connection with this status code (RFC 6455) and reason (at most 123 UTF-8 bytes,
    /// as a close frame holds: the core cuts longer ones, see `Effect.closeClient`).
    | CloseClient of Status: int * Reason: string
    /// Count or log this (metrics, the session's log line); nothing goes on the wire.
    | Observe of Observation
    /// Check these credentials as an access token would be at the upgrade; report `CredentialsAccepted` or `CredentialsRefused`.
    | CheckCredentials of Credentials: Credentials
    /// Find the session that holds `Token` (if this client may have it) and ask it to be taken over (`ResumeAsked`);
    /// report `ResumedElsewhere`, or `ResumeRefused` in words. (The effect of a `resume` request.)
    | HandOver of Token: ResumeToken * Received: int64
    /// The client that asked to take this session over (`ResumeAsked`) is now its client, before any effect that follows; the
    /// one it had, if the driver still has it, is let go.
    | TakeClient
    /// Tell the client that asked to take this session over why it cannot (it hears code 9); this session goes on as it was.
    | RefuseResume of Reason: string

/// What carries out the core's effects: one method per case of `Effect`, each effect handed over by `Effect.dispatch`. A
/// driver that does not carry out a new effect does not compile (`dispatch`'s match is checked complete, warnings errors).
type IEffectHandler<'T> =
    abstract Resolve: generation: Generation * name: string -> 'T
    abstract Dial: generation: Generation * hop: Hop -> 'T
    abstract SecureConnection: generation: Generation * serverName: string -> 'T
    abstract Write: generation: Generation * bytes: ReadOnlyMemory<byte> -> 'T
    abstract CloseConnection: generation: Generation -> 'T
    abstract ShutdownConnection: generation: Generation -> 'T
    abstract Reply: response: Response -> 'T
    abstract ReplyBinary: bytes: ReadOnlyMemory<byte> -> 'T
    abstract ReplyWispData: stream: uint32 * payload: ReadOnlyMemory<byte> -> 'T
    abstract CloseClient: status: int * reason: string -> 'T
    abstract Observe: observation: Observation -> 'T
    abstract CheckCredentials: credentials: Credentials -> 'T
    abstract HandOver: token: ResumeToken * received: int64 -> 'T
    abstract TakeClient: unit -> 'T
    abstract RefuseResume: reason: string -> 'T

module Effect =
    /// The most a close frame's reason may hold (RFC 6455 §5.5: 125 bytes of payload, 2 of them the status).
    [<Literal>]
    let MaxCloseReasonBytes = 123

    /// Close the client with `status` and `reason`, cut at a character boundary (ending in "…") when it is
    /// longer than a close frame holds: reasons carry peer text of any length.
    let closeClient (status: int) (reason: string) =
        let utf8 = Text.Encoding.UTF8
        if utf8.GetByteCount reason <= MaxCloseReasonBytes then CloseClient(status, reason)
        else
            let mutable cut = reason.Substring(0, min reason.Length (MaxCloseReasonBytes - 1))
            while utf8.GetByteCount(cut + "…") > MaxCloseReasonBytes
                  || (cut.Length > 0 && Char.IsHighSurrogate cut.[cut.Length - 1]) do
                cut <- cut.Substring(0, cut.Length - 1)
            CloseClient(status, cut + "…")

    /// Hands `effect` to the handler's method for its case.
    let dispatch (handler: IEffectHandler<'T>) effect =
        match effect with
        | Resolve(generation, name) -> handler.Resolve(generation, name)
        | Dial(generation, hop) -> handler.Dial(generation, hop)
        | SecureConnection(generation, serverName) -> handler.SecureConnection(generation, serverName)
        | Write(generation, bytes) -> handler.Write(generation, bytes)
        | CloseConnection generation -> handler.CloseConnection generation
        | ShutdownConnection generation -> handler.ShutdownConnection generation
        | Reply response -> handler.Reply response
        | ReplyBinary bytes -> handler.ReplyBinary bytes
        | ReplyWispData(stream, payload) -> handler.ReplyWispData(stream, payload)
        | CloseClient(status, reason) -> handler.CloseClient(status, reason)
        | Observe observation -> handler.Observe observation
        | CheckCredentials credentials -> handler.CheckCredentials credentials
        | HandOver(token, received) -> handler.HandOver(token, received)
        | TakeClient -> handler.TakeClient()
        | RefuseResume reason -> handler.RefuseResume reason
