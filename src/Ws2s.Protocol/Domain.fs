/// The vocabulary of the ws2s protocol: ports, logins, destinations, routes and hops (the messages
/// built from them are in Messages.fs). Pure values, no behaviour.
namespace Ws2s.Protocol

open System
open System.Net

/// A TCP port that can only hold 1-65535.
[<Struct; CustomEquality; NoComparison>]
type Port =
    private | Port of int
    member this.Value = let (Port p) = this in p
    override this.Equals other =
        match other with
        | :? Port as p -> p.Value = this.Value
        | _ -> false
    override this.GetHashCode() = this.Value
    override this.ToString() = string this.Value
    static member TryCreate(value: int64) =
        if value >= 1L && value <= 65535L then ValueSome(Port(int value)) else ValueNone

/// Numbers every TCP connection a session opens. Events carry the generation of the
/// connection they came from, so events of a replaced or closed connection are recognisably stale.
type Generation = int64

/// A moment on the driver's monotonic clock, in milliseconds from an origin the driver chose (its session's
/// start, say). Time is an input: the core is told `now` with every input and says when it next needs
/// to be woken (`Session.nextDeadline`); it never reads a clock.
[<Struct>]
type Instant =
    { Milliseconds: int64 }
    member this.PlusMilliseconds(milliseconds: int64) = { Milliseconds = this.Milliseconds + milliseconds }
    member this.PlusSeconds(seconds: int) = { Milliseconds = this.Milliseconds + int64 seconds * 1000L }
    /// Milliseconds from `earlier` to this moment.
    member this.Since(earlier: Instant) = this.Milliseconds - earlier.Milliseconds
    static member Zero = { Milliseconds = 0L }

/// The SSH server a connection goes through, and how to log in. The secrets never appear in
/// `ToString` (nor anywhere they could be logged).
[<CustomEquality; NoComparison>]
type SshLogin =
    { Host: HostName
      Port: Port
      Username: string
      Password: string option
      PrivateKey: string option
      PrivateKeyPassword: string option }
    override this.ToString() = $"{this.Username}@{this.Host}:{this.Port}"
    override this.Equals other =
        match other with
        | :? SshLogin as o ->
            o.Host = this.Host && o.Port = this.Port && o.Username = this.Username && o.Password = this.Password
            && o.PrivateKey = this.PrivateKey && o.PrivateKeyPassword = this.PrivateKeyPassword
        | _ -> false
    override this.GetHashCode() = hash (this.Host, this.Username)

/// What a client presents to authenticate in the connection itself (Wisp's password extension): the password is
/// an access token. Never in `ToString` (nor anywhere it could be logged).
[<CustomEquality; NoComparison; StructuredFormatDisplay("{Shown}")>]
type Credentials =
    { Username: string
      Password: string }
    override this.ToString() = $"{this.Username} (password hidden)"
    /// What `%A` prints (structured formatting would print every field).
    member this.Shown = this.ToString()
    override this.Equals other =
        match other with
        | :? Credentials as o -> o.Username = this.Username && o.Password = this.Password
        | _ -> false
    override this.GetHashCode() = hash this.Username

/// TLS on a connection: the name sent as SNI and checked against the peer's certificate (a
/// validated host name or IP literal, by default the destination's host).
type TlsRequest = { ServerName: HostName }

/// Where a client wants its bytes to go: one case per kind of peer. Host names are judged on the
/// addresses they resolve to; the other kinds are reachable only when a rule lists them exactly.
type Destination =
    /// host:port over TCP.
    | TcpPeer of Host: HostName * Port: Port
    /// host:port over UDP: the shape for datagram peers (judged like TCP; no request asks for it yet).
    | UdpPeer of Host: HostName * Port: Port
    /// A Unix-domain stream socket at a plain absolute path (see `Destinations.parsePath`).
    | UnixPeer of Path: string
    /// A kind of peer the core knows only by its scheme (`scheme:name`), for a connector the application registered.
    | NamedPeer of Scheme: string * Name: string
    /// The destination as a client writes it in `host` (with the port for host:port), and as rules and refusals quote it.
    member this.Text =
        match this with
        | TcpPeer(host, port)
        | UdpPeer(host, port) ->
            match host.Kind with
            | Literal address when address.AddressFamily = Sockets.AddressFamily.InterNetworkV6 -> $"[{host.Written.Trim('[', ']')}]:{port}"
            | _ -> $"{host.Written}:{port}"
        | UnixPeer path -> "unix:" + path
        | NamedPeer(scheme, name) -> scheme + ":" + name
    /// How answers quote it: the host as written (as the original did), else the whole text.
    member this.Quoted =
        match this with
        | TcpPeer(host, _)
        | UdpPeer(host, _) -> host.Written
        | UnixPeer _
        | NamedPeer _ -> this.Text
    /// The host name or address, for the kinds that have one.
    member this.Host =
        match this with
        | TcpPeer(host, _)
        | UdpPeer(host, _) -> Some host
        | UnixPeer _
        | NamedPeer _ -> None
    override this.ToString() = this.Text

/// Where a connect leads and how it gets there: the destination, directly or from an SSH server (`Ssh`,
/// to a TCP destination: the tunnel's target); over TLS from the first byte (`Tls`), or not; relaying
/// the peer's bytes as binary frames (`Binary`) or base64 in JSON; and whether the connection may outlive the
/// client's WebSocket (`Resumable`: the client asked, see spec/protocol.md, Resumable sessions).
type Route = { Destination: Destination; Binary: bool; Ssh: SshLogin option; Tls: TlsRequest option; Resumable: bool }

/// A resume token as a client presented it: a secret, never in `ToString` (nor anywhere it could be logged).
[<CustomEquality; NoComparison; StructuredFormatDisplay("{Shown}")>]
type ResumeToken =
    private | ResumeToken of string
    static member Of(text: string) = ResumeToken text
    /// The token's text, for the driver that looks it up (and nothing else).
    member this.Text = let (ResumeToken t) = this in t
    override this.ToString() = "(resume token hidden)"
    /// What `%A` prints.
    member this.Shown = this.ToString()
    override this.Equals other =
        match other with
        | :? ResumeToken as o -> o.Text = this.Text
        | _ -> false
    override this.GetHashCode() = this.Text.GetHashCode()

/// One dial step, judged already: what a connector turns into a peer stream.
type Hop =
    /// Connect over TCP to this checked address.
    | TcpHop of Endpoint: IPEndPoint
    /// Open a datagram channel to this checked address (no connector yet).
    | UdpHop of Endpoint: IPEndPoint
    /// Connect to the Unix-domain socket at this listed path.
    | UnixHop of Path: string
    /// Reach the peer `scheme:name` (listed exactly) through the connector registered for `scheme`.
    | NamedHop of Scheme: string * Name: string
    /// Log into the SSH server at `Server` (a checked address) and open a channel from there to `Host`:`Port`.
    | SshHop of Server: IPEndPoint * Login: SshLogin * Host: HostName * Port: Port
    /// Which connector carries it out: `tcp`, `udp`, `unix`, `ssh`, or the named peer's scheme.
    member this.Scheme =
        match this with
        | TcpHop _ -> "tcp"
        | UdpHop _ -> "udp"
        | UnixHop _ -> "unix"
        | NamedHop(scheme, _) -> scheme
        | SshHop _ -> "ssh"
    /// For logs: where it leads (never a secret: an SSH hop names the login by user@server).
    member this.Text =
        match this with
        | TcpHop endpoint -> endpoint.ToString()
        | UdpHop endpoint -> "udp:" + endpoint.ToString()
        | UnixHop path -> "unix:" + path
        | NamedHop(scheme, name) -> scheme + ":" + name
        | SshHop(server, login, host, port) -> $"{host.Written}:{port} via ssh {login.Username}@{server}"
