/// SSH tunnels in the core: the codec's fields, which hop the policy judges, and code 6.
module Ws2s.Protocol.Tests.SshTests

open System
open System.Net
open System.Text
open Xunit
open Ws2s.Protocol
open Ws2s.Protocol.Tests.Generators

let frame (json: string) = ClientText(ReadOnlyMemory(Encoding.UTF8.GetBytes json))

let connectThroughSsh =
    """{"command":"connect","host":"10.1.2.3","port":6379,"ssh_host":"bastion.example","ssh_port":2222,
        "ssh_username":"ops","ssh_password":"s3cret","ssh_private_key":null}"""

[<Fact>]
let ``ssh fields become a login, and its text never shows the secrets`` () =
    match Codec.parseRequest (ReadOnlySpan(Encoding.UTF8.GetBytes connectThroughSsh)) with
    | Valid(Connect { Destination = TcpPeer({ Written = "10.1.2.3" }, _); Ssh = Some login }) ->
        Assert.Equal("bastion.example", login.Host.Written)
        Assert.Equal(2222, login.Port.Value)
        Assert.Equal(Some "s3cret", login.Password)
        Assert.Equal(None, login.PrivateKey)
        Assert.DoesNotContain("s3cret", string login)
    | other -> failwithf "parsed as %A" other

[<Fact>]
let ``the policy judges the SSH server, and the target behind it is left to ssh.allowTargets`` () =
    // 10.1.2.3 is a private address: refused as a direct destination, fine behind an SSH server.
    let settings = { standardSettings with Policy = Policy.serverLocalOnly false }
    let session, effects = Session.step (Session.start settings t0) t0 (frame connectThroughSsh)
    Assert.Equal<Effect list>([ Resolve(1L, "bastion.example") ], effects)
    let server = IPAddress.Parse "93.184.216.34"
    let _, effects = Session.step session t0 (Resolved(1L, [ server ]))
    match effects with
    | [ Dial(1L, SshHop(endpoint, login, { Written = "10.1.2.3" }, port)) ] ->
        Assert.Equal(IPEndPoint(server, 2222), endpoint)
        Assert.Equal("ops", login.Username)
        Assert.Equal(6379, port.Value)
    | other -> failwithf "expected a tunnel, got %A" other
    // The SSH server itself on loopback is refused like any destination.
    let _, effects = Session.step session t0 (Resolved(1L, [ IPAddress.Loopback ]))
    Assert.Contains(Reply(Forbidden("bastion.example", "loopback 127.0.0.0/8")), effects)

[<Fact>]
let ``ssh.allowTargets refuses a final target it does not name, with code 4`` () =
    let rule = Policy.parseRule "10.1.2.0/24:6379" |> Result.toOption |> Option.get
    let settings = { standardSettings with SshAllowTargets = [ rule ] }
    let _, allowed = Session.step (Session.start settings t0) t0 (frame connectThroughSsh)
    Assert.Contains(Resolve(1L, "bastion.example"), allowed)
    let _, refused = Session.step (Session.start settings t0) t0 (frame (connectThroughSsh.Replace("6379", "22")))
    Assert.Equal<Effect list>([ Reply(Forbidden("10.1.2.3", "not in ssh.allowTargets")); Observe(ConnectAnswered(None, 4)) ], refused)

[<Fact>]
let ``a tunnel that fails answers code 6 with the reason`` () =
    let session, _ = Session.step (Session.start standardSettings t0) t0 (frame connectThroughSsh)
    let session, _ = Session.step session t0 (Resolved(1L, [ IPAddress.Parse "93.184.216.34" ]))
    let _, effects = Session.step session t0 (DialFailedWith(1L, TunnelFailed "authentication failed for user ops (wrong password or key)"))
    Assert.Contains(Reply(SshFailed "authentication failed for user ops (wrong password or key)"), effects)
    Assert.Equal(6, (SshFailed "x").Code)

[<Xunit.Fact>]
let ``a session without ssh in its scope gets code 4 for any tunnel, before any dial`` () =
    let settings = Session.withoutSsh standardSettings
    let frame = """{"command":"connect","host":"10.1.2.3","port":22,"ssh_host":"127.0.0.1","ssh_username":"u","ssh_password":"p"}"""B
    let _, effects = Session.step (Session.start settings t0) t0 (ClientText(ReadOnlyMemory frame))
    Xunit.Assert.Equal<Effect list>(
        [ Reply(Forbidden("10.1.2.3", "SSH tunnels are not in this session's scope")); Observe(ConnectAnswered(None, 4)) ], effects)
