/// Resumable sessions in the core: what an independent review of issue 25 found (each failed before its fix).
module Ws2s.Protocol.Tests.ResumeReviewTests

open System
open System.Text
open Xunit
open Ws2s.Protocol
open Ws2s.Protocol.Tests.Generators

let private frame (json: string) = ClientText(ReadOnlyMemory(Encoding.UTF8.GetBytes json))
let private connect =
    frame """{"command":"connect","host":"127.0.0.1","port":7001,"resumable":true}"""
let private at (seconds: float) = { Milliseconds = int64 (seconds * 1000.0) }
let private bytes (text: string) = ReadOnlyMemory(Encoding.UTF8.GetBytes text)
let private settingsWith grace = { standardSettings with Resume = { GraceSeconds = grace; MaxBufferedBytes = 4096 } }

let private run session now inputs =
    inputs |> List.fold (fun (s, all) i -> let s, e = Session.step s now i in s, all @ e) (session, [])

/// A resume whose ResumeAsked reaches the session as its grace ends: `step` acts on the deadline first (the session ends,
/// 1001 'did not resume'); the resume must not then be taken by the ended session (it was: TakeClient and 'resume done' went
/// to a client the session then closed). The driver answers it: nothing holds the token.
[<Fact>]
let ``a resume asked as the grace ends is not taken by the ended session`` () =
    let session, _ = run (Session.start (settingsWith 30) t0) t0 [ connect; Dialled 1L ]
    let session, _ = Session.step session (at 10.0) ClientLost
    let session, _ = Session.step session (at 11.0) (Received(1L, bytes "kept"))
    let session, effects = Session.step session (at 40.0) (ResumeAsked 0L)
    Assert.True(session.Phase.IsEnded)
    Assert.DoesNotContain(TakeClient, effects)
    Assert.DoesNotContain(effects, fun e -> match e with Reply(ResumeDone _) -> true | _ -> false)

/// The same with the idle timeout: a resume asked as the idle timeout ends a session is taken by the ended session.
[<Fact>]
let ``a resume asked as the idle timeout ends the session is not taken by the ended session`` () =
    let settings = { settingsWith 30 with IdleTimeoutSeconds = 20 }
    let session, _ = run (Session.start settings t0) t0 [ connect; Dialled 1L ]
    let session, effects = Session.step session (at 25.0) (ResumeAsked 0L)
    Assert.True(session.Phase.IsEnded)
    Assert.DoesNotContain(TakeClient, effects)

/// Spec: 'A resume that cannot be honoured changes nothing'. A session whose resumable connection's peer ended (Idle, still
/// keeping bytes and code 5 for its client) that asked to resume another lost what it kept when refused. It is code 7 now:
/// it keeps a connection's end, as a session with a connection.
[<Fact>]
let ``a resume from a session that keeps a resumable connection's end is code 7 and changes nothing`` () =
    let session, _ = run (Session.start (settingsWith 30) t0) t0 [ connect; Dialled 1L; Received(1L, bytes "abc"); PeerFinished 1L ]
    Assert.True(session.Resumable.IsSome)
    let session, effects = run session t0 [ frame """{"command":"resume","token":"t1.AAAAAAAAAAAAAAAAAAAAAA","received":0}""" ]
    Assert.Contains(Reply(BadRequest "resume needs a session without a connection"), effects)
    Assert.True(session.Resumable.IsSome, "the session's own resumable record was dropped")

/// A `resume` queued behind a pending request stops the reader there: what the client sends after it goes to the session it
/// resumes, if it does (the reader would otherwise have read it, and the WebSocket could not be handed on).
[<Fact>]
let ``no frame is read past a queued resume`` () =
    let session, _ = run (Session.start (settingsWith 30) t0) t0 [ frame """{"command":"connect","host":"127.0.0.1","port":7001}""" ]
    Assert.True(Session.acceptsRequest session)
    let session, _ = run session t0 [ frame """{"command":"resume","token":"t1.AAAAAAAAAAAAAAAAAAAAAA","received":0}""" ]
    Assert.False(Session.acceptsRequest session)
