#!/usr/bin/env node
// Wisp conformance comparison: one suite of named cases, played by hand on the wire (raw
// packets over the `ws` npm package) against any Wisp server, each case recording what the
// server did (the packets, close codes and reasons it sent, whether the WebSocket survived).
// The same suite is run against ws2s, wisp-js's server, wisp-server-node and
// wisp-server-python for docs/wisp-conformance.md.
//
// Usage:
//   node conformance.mjs --url ws://127.0.0.1:PORT/wisp/ [--label NAME]
//        [--blocked-url ws://127.0.0.1:PORT2/wisp/]  a second instance of the same server whose
//                                                    policy blocks loopback (else that case is n/a)
//        [--server-pid PID]   for the RSS columns (VmRSS of PID and its descendants)
//        [--cases a,b,c] [--list] [--modules /path/to/node_modules]
//        [--client-script path/to/wisp-js-client.mjs] [--abuse-packets 2000] [--abuse-bytes 61440]
//        [--stall-watch-ms 0]  the slow-peer cases: how long to watch a stalled WebSocket
//
// Modules: --modules or WISP_JS_MODULES (a node_modules folder holding `ws` and
// @mercuryworkshop/wisp-js, e.g. `npm install --prefix /tmp/wispjs --no-save --no-package-lock
// @mercuryworkshop/wisp-js@0.5.0 ws`). The 100-stream cases spawn wisp-js-client.mjs (beside
// this file) with the same modules.
//
// stdout: one JSON object per case, {"case":NAME,"server":LABEL,"summary":"a few words",...}.
// Every peer it starts (TCP echo, TCP sinks, UDP echo) listens on 127.0.0.1; the URLs must be
// loopback; every host a CONNECT names is the literal 127.0.0.1. Every loop is bounded in count
// and time.

import net from "node:net";
import dgram from "node:dgram";
import path from "node:path";
import { spawn } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

// ---------------------------------------------------------------- arguments
function isLoopbackUrl(s) {
  let u;
  try { u = new URL(s); } catch { return false; }
  if (u.protocol !== "ws:" && u.protocol !== "wss:") return false;
  const h = u.hostname.replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function parseArgs(argv) {
  const o = {
    url: null, blockedUrl: null, label: null, serverPid: null, cases: null, list: false,
    modules: process.env.WISP_JS_MODULES || null, clientScript: path.join(here, "wisp-js-client.mjs"),
    abusePackets: 2000, abuseBytes: 60 * 1024, stallWatchMs: 0,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`);
      return argv[++i];
    };
    switch (a) {
      case "--url": o.url = next(); break;
      case "--blocked-url": o.blockedUrl = next(); break;
      case "--label": o.label = next(); break;
      case "--server-pid": o.serverPid = parseInt(next(), 10); break;
      case "--cases": o.cases = next().split(",").map((s) => s.trim()).filter(Boolean); break;
      case "--list": o.list = true; break;
      case "--modules": o.modules = next(); break;
      case "--client-script": o.clientScript = next(); break;
      case "--abuse-packets": o.abusePackets = Math.min(100000, parseInt(next(), 10)); break;
      case "--abuse-bytes": o.abuseBytes = Math.min(1 << 20, parseInt(next(), 10)); break;
      case "--stall-watch-ms": o.stallWatchMs = Math.min(600000, parseInt(next(), 10)); break;
      case "--help": case "-h":
        { // the header comment, up to the first line that is not one
          const lines = readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n").slice(1);
          const end = lines.findIndex((l) => !l.startsWith("//"));
          process.stdout.write(lines.slice(0, end).map((l) => l.slice(3)).join("\n") + "\n");
        }
        process.exit(0);
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  if (o.list) return o;
  if (!o.url) throw new Error("--url is required");
  for (const u of [o.url, o.blockedUrl]) {
    if (u !== null && !isLoopbackUrl(u)) throw new Error(`refusing a non-loopback URL: ${u}`);
  }
  o.label = o.label || o.url;
  return o;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`conformance.mjs: ${e.message}\n`);
  process.exit(2);
}

function loadWs(modulesDir) {
  const req = createRequire(modulesDir ? path.join(path.resolve(modulesDir), "_") : import.meta.url);
  return req("ws");
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const HOST = "127.0.0.1"; // every CONNECT names this literal: nothing is ever resolved

// ---------------------------------------------------------------- packets
const T = { CONNECT: 1, DATA: 2, CONTINUE: 3, CLOSE: 4, INFO: 5 };
const TNAME = { 1: "CONNECT", 2: "DATA", 3: "CONTINUE", 4: "CLOSE", 5: "INFO" };

function pkt(type, id, payload = Buffer.alloc(0)) {
  const h = Buffer.alloc(5);
  h[0] = type;
  h.writeUInt32LE(id >>> 0, 1);
  return Buffer.concat([h, Buffer.from(payload)]);
}
const connectPkt = (id, port, streamType = 1, host = HOST) => {
  const p = Buffer.alloc(3);
  p[0] = streamType;
  p.writeUInt16LE(port, 1);
  return pkt(T.CONNECT, id, Buffer.concat([p, Buffer.from(host, "utf8")]));
};
const dataPkt = (id, bytes) => pkt(T.DATA, id, typeof bytes === "string" ? Buffer.from(bytes) : bytes);
const closePkt = (id, reason) => pkt(T.CLOSE, id, Buffer.from([reason]));
function infoPkt(major, minor, exts) {
  const parts = [Buffer.from([major, minor])];
  for (const { id, payload = Buffer.alloc(0) } of exts) {
    const h = Buffer.alloc(5);
    h[0] = id;
    h.writeUInt32LE(payload.length, 1);
    parts.push(h, payload);
  }
  return pkt(T.INFO, 0, Buffer.concat(parts));
}
const hex = (n) => "0x" + n.toString(16).padStart(2, "0");

function decode(buf) {
  if (buf.length < 5) return { t: "SHORT", len: buf.length };
  const type = buf[0];
  const id = buf.readUInt32LE(1);
  const p = buf.subarray(5);
  switch (type) {
    case T.DATA: return { t: "DATA", id, len: p.length, bytes: p };
    case T.CONTINUE: return { t: "CONTINUE", id, credit: p.length >= 4 ? p.readUInt32LE(0) : null };
    case T.CLOSE: return { t: "CLOSE", id, reason: p.length >= 1 ? p[0] : null };
    case T.INFO: {
      const exts = [];
      let o = 2;
      while (o + 5 <= p.length) {
        const eid = p[o];
        const len = p.readUInt32LE(o + 1);
        const body = p.subarray(o + 5, o + 5 + len);
        exts.push({ id: eid, len, text: body.toString("utf8") });
        o += 5 + len;
      }
      return { t: "INFO", id, major: p[0], minor: p[1], exts };
    }
    default: return { t: `TYPE_${hex(type)}`, id, len: p.length };
  }
}
function fmt(p) {
  switch (p.t) {
    case "DATA": return `DATA(${p.id},${p.len}B)`;
    case "CONTINUE": return `CONTINUE(${p.id},${p.credit})`;
    case "CLOSE": return `CLOSE(${p.id},${p.reason === null ? "?" : hex(p.reason)})`;
    case "INFO": return `INFO(${p.id},v${p.major}.${p.minor},[${p.exts.map((e) => `${hex(e.id)}${e.len ? `:${JSON.stringify(e.text)}` : ""}`).join(",")}])`;
    case "TEXT": return `TEXT(${p.len}B)`;
    default: return p.len !== undefined ? `${p.t}(${p.id ?? ""},${p.len}B)` : p.t;
  }
}

// ---------------------------------------------------------------- a raw Wisp connection
class Conn {
  constructor(ws) {
    this.ws = ws;
    this.packets = [];
    this.closed = null;
    this.waiters = [];
    this.t0 = Date.now();
    ws.on("message", (data, isBinary) => {
      const p = isBinary ? decode(Buffer.from(data)) : { t: "TEXT", len: data.length };
      p.at = Date.now() - this.t0;
      this.packets.push(p);
      this.wake();
    });
    ws.on("close", (code, reason) => {
      this.closed = { code, reason: reason.toString("utf8"), at: Date.now() - this.t0 };
      this.wake();
    });
    ws.on("error", () => {});
  }

  static open(url, protocols = [], timeoutMs = 5000) {
    const WebSocket = loadWs(opts.modules);
    return new Promise((resolve) => {
      const ws = new WebSocket(url, protocols, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
      const conn = new Conn(ws);
      ws.once("open", () => resolve({ conn, protocol: ws.protocol }));
      ws.once("error", (e) => resolve({ error: e.message }));
      ws.once("unexpected-response", (req, res) => {
        resolve({ error: `HTTP ${res.statusCode}` });
        req.destroy();
      });
    });
  }

  wake() { for (const w of this.waiters.splice(0)) w(); }
  get open() { return this.closed === null && this.ws.readyState === 1; }
  send(buf) { if (this.ws.readyState === 1) this.ws.send(buf); }
  sendText(s) { if (this.ws.readyState === 1) this.ws.send(s); }

  // resolves with the first packet at index >= from satisfying pred, or null (timeout or close)
  async waitFor(pred, ms, from = 0) {
    const deadline = Date.now() + ms;
    for (let i = from; ;) {
      for (; i < this.packets.length; i++) if (pred(this.packets[i])) return this.packets[i];
      if (this.closed || Date.now() >= deadline) return null;
      await new Promise((r) => {
        this.waiters.push(r);
        setTimeout(r, Math.max(1, deadline - Date.now()));
      });
    }
  }

  // the stream-0 CONTINUE of the handshake (INFO before it in v2)
  async hello(ms = 3000) { return await this.waitFor((p) => p.t === "CONTINUE" && p.id === 0, ms); }

  since(i) { return this.packets.slice(i).map(fmt); }

  // does the connection still carry a new stream end to end?
  async probe(echoPort, id) {
    if (!this.open) return false;
    const from = this.packets.length;
    this.send(connectPkt(id, echoPort));
    this.send(dataPkt(id, "probe"));
    const got = await this.waitFor((p) => p.t === "DATA" && p.id === id, 3000, from);
    this.send(closePkt(id, 0x02));
    return !!got;
  }

  async close() {
    if (this.ws.readyState === 1) this.ws.close(1000);
    const deadline = Date.now() + 1000;
    while (!this.closed && Date.now() < deadline) await sleep(10);
    if (!this.closed) this.ws.terminate();
  }
}

// a v1 connection past its handshake
async function v1(url = opts.url) {
  const r = await Conn.open(url);
  if (r.error) throw new Error(`cannot open ${url}: ${r.error}`);
  const hello = await r.conn.hello();
  if (!hello) throw new Error(`no CONTINUE on stream 0 from ${url} (got ${r.conn.since(0).join(" ")})`);
  return r.conn;
}
const wsCloseOf = (c) => (c.closed ? { code: c.closed.code, reason: c.closed.reason } : null);

// ---------------------------------------------------------------- loopback peers
function tcpServer(onConn) {
  return new Promise((resolve, reject) => {
    const s = net.createServer(onConn);
    s.once("error", reject);
    s.listen(0, HOST, () => resolve(s));
  });
}
async function echoPeer() {
  const st = { accepted: 0, open: 0, perConn: [], sockets: new Set() };
  const s = await tcpServer((sock) => {
    const me = { bytes: 0, text: "" };
    st.accepted++; st.open++; st.perConn.push(me); st.sockets.add(sock);
    sock.on("data", (d) => { me.bytes += d.length; if (me.text.length < 256) me.text += d.toString("latin1"); sock.write(d); });
    sock.on("error", () => {});
    sock.on("close", () => { st.open--; st.sockets.delete(sock); });
  });
  st.port = s.address().port;
  st.close = () => { for (const k of st.sockets) k.destroy(); s.close(); };
  return st;
}
async function discardPeer() { // reads and drops
  const st = { accepted: 0, bytes: 0, sockets: new Set() };
  const s = await tcpServer((sock) => {
    st.accepted++; st.sockets.add(sock);
    sock.on("data", (d) => { st.bytes += d.length; });
    sock.on("error", () => {});
    sock.on("close", () => st.sockets.delete(sock));
  });
  st.port = s.address().port;
  st.close = () => { for (const k of st.sockets) k.destroy(); s.close(); };
  return st;
}
async function stuckPeer() { // accepts and never reads
  const st = { accepted: 0, sockets: new Set() };
  const s = await tcpServer((sock) => {
    st.accepted++; st.sockets.add(sock);
    sock.pause();
    sock.on("error", () => {});
    sock.on("close", () => st.sockets.delete(sock));
  });
  st.port = s.address().port;
  st.close = () => { for (const k of st.sockets) k.destroy(); s.close(); };
  return st;
}
async function closedPort() { // a loopback port nothing listens on (just released)
  const s = await tcpServer(() => {});
  const port = s.address().port;
  await new Promise((r) => s.close(r));
  return port;
}
function udpEcho() {
  return new Promise((resolve) => {
    const st = { datagrams: 0 };
    const s = dgram.createSocket("udp4");
    s.on("message", (m, rinfo) => { st.datagrams++; s.send(m, rinfo.port, rinfo.address); });
    s.bind(0, HOST, () => { st.port = s.address().port; st.close = () => s.close(); resolve(st); });
  });
}

// ---------------------------------------------------------------- server memory
function descendants(pid) {
  const out = [pid];
  for (let i = 0; i < out.length && out.length < 256; i++) {
    let tasks = [];
    try { tasks = readdirSync(`/proc/${out[i]}/task`); } catch { continue; }
    for (const t of tasks) {
      try {
        for (const c of readFileSync(`/proc/${out[i]}/task/${t}/children`, "utf8").trim().split(/\s+/)) {
          if (c) out.push(parseInt(c, 10));
        }
      } catch { /* gone */ }
    }
  }
  return out;
}
function rssKb(pid) {
  if (!pid) return null;
  let sum = 0;
  for (const p of descendants(pid)) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, "utf8"));
      if (m) sum += parseInt(m[1], 10);
    } catch { /* gone */ }
  }
  return sum;
}

// ---------------------------------------------------------------- the cases
let shared; // the echo every probe uses
const cases = {};

cases["v1-hello"] = async () => {
  const r = await Conn.open(opts.url);
  if (r.error) return { summary: `handshake failed: ${r.error}`, handshakeError: r.error };
  const c = r.conn;
  await c.waitFor(() => false, 1000);
  const first = c.packets[0];
  const res = {
    subprotocol: r.protocol || "",
    firstPacket: first ? fmt(first) : null,
    packets: c.since(0),
    summary: first ? `first ${fmt(first)}` : "nothing within 1 s",
  };
  await c.close();
  return res;
};

const CLIENT_EXTS = [{ id: 0x01 }, { id: 0x04 }, { id: 0x05 }]; // UDP, MOTD, stream-open confirmation

cases["v2-hello"] = async () => {
  const r = await Conn.open(opts.url, ["wisp-v2"]);
  if (r.error) return { summary: `handshake failed (${r.error})`, handshakeError: r.error };
  const c = r.conn;
  await c.waitFor(() => false, 700);
  const before = c.since(0);
  const n = c.packets.length;
  const info = c.packets.find((p) => p.t === "INFO");
  if (info) c.send(infoPkt(2, 0, CLIENT_EXTS));
  await c.waitFor(() => false, 700);
  const after = c.since(n);
  const res = {
    subprotocol: r.protocol || "",
    beforeClientInfo: before,
    afterClientInfo: info ? after : null,
    serverInfo: info ? { major: info.major, minor: info.minor, extensions: info.exts.map((e) => ({ id: hex(e.id), len: e.len, ...(e.len ? { text: e.text } : {}) })) } : null,
    wsClose: wsCloseOf(c),
    summary: info
      ? `subprotocol "${r.protocol}"; ${before.join(" ")}${after.length ? ` | after client INFO: ${after.join(" ")}` : " | nothing after client INFO"}`
      : `subprotocol "${r.protocol}"; no INFO: ${before.join(" ")} (v1)`,
  };
  await c.close();
  return res;
};

cases["echo-one-stream"] = async () => {
  const echo = await echoPeer();
  const c = await v1();
  const n = c.packets.length;
  c.send(connectPkt(1, echo.port));
  c.send(dataPkt(1, "hello wisp"));
  let got = 0;
  const deadline = Date.now() + 3000;
  while (got < 10 && Date.now() < deadline) {
    const p = await c.waitFor((q) => q.t === "DATA" && q.id === 1, deadline - Date.now(), n + 0);
    if (!p) break;
    got = c.packets.slice(n).filter((q) => q.t === "DATA" && q.id === 1).reduce((a, q) => a + q.len, 0);
    if (got < 10) await sleep(20);
  }
  const m = c.packets.length;
  c.send(closePkt(1, 0x02));
  await sleep(500);
  const res = {
    echoedBytes: got,
    packets: c.since(n),
    afterClientClose: c.since(m),
    peerOpenAfterClientClose: echo.open,
    summary: `${got === 10 ? "echoed 10/10 B" : `echoed ${got}/10 B`}; after client CLOSE: ${c.since(m).join(" ") || "no answer"}, peer socket ${echo.open ? "still open" : "closed"}`,
  };
  await c.close(); echo.close();
  return res;
};

function wispJsCase(version) {
  return async () => {
    const args = [opts.clientScript, "--url", opts.url, "--version", String(version), "--host", HOST,
      "--port", String(shared.port), "--streams", "100", "--bytes", "262144", "--timeout-ms", "120000"];
    if (version === 2) args.push("--allow-fallback");
    if (opts.modules) args.push("--modules", opts.modules);
    const out = await new Promise((resolve) => {
      const ch = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
      let so = "", se = "";
      ch.stdout.on("data", (d) => { so += d; });
      ch.stderr.on("data", (d) => { se += d; });
      const t = setTimeout(() => ch.kill("SIGKILL"), 150000);
      ch.on("close", (code) => { clearTimeout(t); resolve({ code, so, se }); });
    });
    let j = null;
    try { j = JSON.parse(out.so.trim().split("\n").pop()); } catch { /* below */ }
    if (!j) return { summary: `client printed no JSON (exit ${out.code})`, stderr: out.se.slice(-500) };
    return {
      ok: j.ok, error: j.error, ms: j.ms, sha256Mismatches: j.sha256Mismatches, wispVersion: j.wispVersion,
      subprotocol: j.subprotocol, initialCredit: j.initialCredit, continuePackets: j.continuePackets,
      serverInfo: j.serverInfo, wsConnects: j.wsConnects, streamsDone: j.streamsDone, incomplete: j.incomplete,
      summary: j.ok
        ? `ok, 25 MiB echoed, SHA-256 equal, ${j.ms} ms (ran as v${j.wispVersion}${j.wsConnects > 1 ? ` after ${j.wsConnects - 1} failed v2 handshake` : ""})`
        : `FAILED: ${j.error}`,
    };
  };
}
cases["wisp-js-100x256KiB-v1"] = wispJsCase(1);
cases["wisp-js-100x256KiB-v2"] = wispJsCase(2);

async function closeReasonCase(url, port, peer) {
  const c = await v1(url);
  const n = c.packets.length;
  const t = Date.now();
  c.send(connectPkt(1, port));
  const p = await c.waitFor((q) => q.id === 1 && (q.t === "CLOSE" || q.t === "CONTINUE" || q.t === "DATA"), 12000, n);
  const ms = Date.now() - t;
  await sleep(300);
  const res = {
    reply: p ? fmt(p) : null, ms, packets: c.since(n), wsClose: wsCloseOf(c),
    peerAccepted: peer ? peer.accepted : undefined,
    survived: await c.probe(shared.port, 99),
  };
  await c.close();
  return res;
}

cases["refused-port"] = async () => {
  const port = await closedPort();
  const r = await closeReasonCase(opts.url, port);
  r.summary = r.reply ? `${r.reply} after ${r.ms} ms` : "no CLOSE within 12 s";
  return r;
};

cases["blocked-destination"] = async () => {
  if (!opts.blockedUrl) return { summary: "n/a (no --blocked-url: the server has no loopback block)", na: true };
  const peer = await echoPeer();
  const r = await closeReasonCase(opts.blockedUrl, peer.port, peer);
  r.summary = (r.reply ? `${r.reply} after ${r.ms} ms` : "no CLOSE within 12 s") + (peer.accepted ? ", but the peer WAS dialled" : ", nothing dialled");
  peer.close();
  return r;
};

async function oddInput(send, settleMs = 700) {
  const c = await v1();
  const n = c.packets.length;
  send(c);
  await c.waitFor(() => false, settleMs);
  const res = { packets: c.since(n), wsClose: wsCloseOf(c) };
  res.survived = await c.probe(shared.port, 99);
  res.summary = `${res.packets.length ? res.packets.join(" ") : "no packet"}; ${res.wsClose ? `WebSocket closed ${res.wsClose.code}${res.wsClose.reason ? ` "${res.wsClose.reason}"` : ""}` : (res.survived ? "connection still works" : "connection open but a new stream gets no echo")}`;
  await c.close();
  return res;
}

cases["data-unknown-stream"] = () => oddInput((c) => c.send(dataPkt(77, "nobody")));
cases["close-unknown-stream"] = () => oddInput((c) => c.send(closePkt(78, 0x02)));
cases["short-packet"] = () => oddInput((c) => c.send(Buffer.from([0x02, 0x01, 0x00])));
cases["unknown-packet-type"] = () => oddInput((c) => c.send(pkt(0x09, 1, Buffer.from("abc"))));
cases["text-frame"] = () => oddInput((c) => c.sendText("hello"));
cases["client-continue"] = () => oddInput((c) => c.send(pkt(T.CONTINUE, 1, Buffer.from([1, 0, 0, 0]))));

cases["connect-live-id"] = async () => {
  const echo = await echoPeer();
  const c = await v1();
  const n = c.packets.length;
  c.send(connectPkt(5, echo.port));
  c.send(dataPkt(5, "first"));
  await c.waitFor((p) => p.t === "DATA" && p.id === 5, 3000, n);
  const m = c.packets.length;
  c.send(connectPkt(5, echo.port)); // same id, while stream 5 is live
  await c.waitFor(() => false, 700);
  const afterSecondConnect = c.since(m);
  const openAfter = echo.open, acceptedAfter = echo.accepted;
  const k = c.packets.length;
  c.send(dataPkt(5, "second"));
  await c.waitFor(() => false, 700);
  const res = {
    afterSecondConnect, peerAccepted: acceptedAfter, peerOpen: openAfter,
    afterDataOnId5: c.since(k),
    secondWentTo: echo.perConn.map((x, i) => (x.text.includes("second") ? `connection #${i + 1}` : null)).filter(Boolean),
    wsClose: wsCloseOf(c),
  };
  res.survived = await c.probe(shared.port, 99);
  await sleep(200);
  res.peerOpenAtEnd = echo.open;
  await c.close();
  await sleep(500);
  res.peerOpenAfterWsClosed = echo.open;
  res.summary = `${afterSecondConnect.length ? afterSecondConnect.join(" ") : "no packet"}; peer: ${acceptedAfter} dialled, ${openAfter} open`
    + (res.secondWentTo.length ? `; next DATA went to ${res.secondWentTo.join("+")}` : "; next DATA dropped")
    + `; ${echo.open} peer socket(s) still open after the WebSocket closed`;
  echo.close();
  return res;
};

cases["stream-id-0-connect"] = async () => {
  const echo = await echoPeer();
  const c = await v1();
  const n = c.packets.length;
  c.send(connectPkt(0, echo.port));
  c.send(dataPkt(0, "zero"));
  await c.waitFor(() => false, 800);
  const res = { packets: c.since(n), wsClose: wsCloseOf(c), peerAccepted: echo.accepted, echoedOnStream0: echo.perConn.some((x) => x.bytes > 0) };
  res.survived = await c.probe(shared.port, 99);
  res.summary = `${res.packets.length ? res.packets.join(" ") : "no packet"}; `
    + `${res.wsClose ? `WebSocket closed ${res.wsClose.code}${res.wsClose.reason ? ` "${res.wsClose.reason}"` : ""}` : "WebSocket open"}; peer ${echo.accepted ? `dialled${res.echoedOnStream0 ? ", bytes relayed" : ""}` : "not dialled"}`;
  await c.close(); echo.close();
  return res;
};

cases["udp-connect"] = async () => {
  const u = await udpEcho();
  const c = await v1();
  const n = c.packets.length;
  c.send(connectPkt(7, u.port, 2));
  c.send(dataPkt(7, "udp-ping"));
  const p = await c.waitFor((q) => q.id === 7 && (q.t === "DATA" || q.t === "CLOSE"), 2000, n);
  await c.waitFor(() => false, 300);
  const res = { reply: p ? fmt(p) : null, packets: c.since(n), datagramsAtPeer: u.datagrams, wsClose: wsCloseOf(c) };
  res.survived = await c.probe(shared.port, 99);
  res.summary = `${p ? res.packets.join(" ") : "nothing within 2 s"}; ${u.datagrams} datagram(s) reached the peer`
    + (res.wsClose ? `; WebSocket closed ${res.wsClose.code}${res.wsClose.reason ? ` "${res.wsClose.reason}"` : ""}` : "");
  await c.close(); u.close();
  return res;
};

cases["continue-cadence"] = async () => {
  const sink = await discardPeer();
  const c = await v1();
  const hello = c.packets.find((p) => p.t === "CONTINUE" && p.id === 0);
  let credit = hello.credit;
  const n = c.packets.length;
  c.send(connectPkt(1, sink.port));
  let sent = 0, seen = n, stalledAt = null;
  const grants = [];
  const absorb = () => {
    for (; seen < c.packets.length; seen++) {
      const p = c.packets[seen];
      if (p.t === "CONTINUE" && p.id === 1) { grants.push(`${sent}:${p.credit}`); credit = p.credit; }
    }
  };
  const TOTAL = 512;
  while (sent < TOTAL && c.open) {
    absorb();
    if (credit <= 0) {
      const p = await c.waitFor((q) => q.t === "CONTINUE" && q.id === 1, 5000, seen);
      if (!p) { stalledAt = sent; break; }
      continue;
    }
    c.send(dataPkt(1, Buffer.alloc(32, 0x61)));
    sent++; credit--;
    if (sent % 16 === 0) await sleep(1);
  }
  await c.waitFor(() => false, 1000);
  absorb();
  const closes = c.since(n).filter((s) => s.startsWith("CLOSE"));
  const res = {
    initialCredit: hello.credit, sent, grants, stalledAt, closes, bytesAtPeer: sink.bytes, wsClose: wsCloseOf(c),
    summary: `initial ${hello.credit}; ${grants.length} CONTINUE(s) for 512 DATA [sent:credit ${grants.slice(0, 8).join(" ")}${grants.length > 8 ? " …" : ""}]`
      + `${stalledAt !== null ? `; STALLED at ${stalledAt} (no CONTINUE in 5 s)` : ""}${closes.length ? `; ${closes.join(" ")}` : ""}`,
  };
  await c.close(); sink.close();
  return res;
};

const pastCredits = (bytes) => async () => {
  const stuck = await stuckPeer();
  const c = await v1();
  const initialCredit = c.packets.find((p) => p.t === "CONTINUE" && p.id === 0).credit;
  const n = c.packets.length;
  c.send(connectPkt(1, stuck.port));
  await c.waitFor((p) => p.id === 1 && p.t === "CLOSE", 500, n);
  const rssBefore = rssKb(opts.serverPid);
  let rssPeak = rssBefore;
  const sampler = setInterval(() => { const r = rssKb(opts.serverPid); if (r !== null && r > rssPeak) rssPeak = r; }, 200);
  const chunk = Buffer.alloc(bytes, 0x62);
  let sent = 0, closeAt = null, stalledAt = null;
  const sendDeadline = Date.now() + 60000;
  let lastProgress = Date.now(), lastBuffered = 0;
  const isClose = (p) => p.t === "CLOSE" && p.id === 1;
  while (sent < opts.abusePackets && c.open && Date.now() < sendDeadline) {
    if (c.packets.some(isClose)) { closeAt = sent; break; }
    const b = c.ws.bufferedAmount;
    if (b > 8 * 1024 * 1024) {
      if (b < lastBuffered) lastProgress = Date.now();
      lastBuffered = b;
      if (Date.now() - lastProgress > 5000) { stalledAt = sent; break; }
      await sleep(10);
      continue;
    }
    lastProgress = Date.now(); lastBuffered = b;
    c.send(dataPkt(1, chunk));
    sent++;
    if (sent % 8 === 0) await sleep(0);
  }
  // let the server take what is in flight (bounded), then sample once more
  const drainDeadline = Date.now() + 5000;
  while (c.open && c.ws.bufferedAmount > 0 && Date.now() < drainDeadline && stalledAt === null) await sleep(50);
  await sleep(1000);
  if (closeAt === null && c.packets.some(isClose)) closeAt = sent;
  clearInterval(sampler);
  const rssAfter = rssKb(opts.serverPid);
  if (rssAfter !== null && rssAfter > rssPeak) rssPeak = rssAfter;
  const unsent = c.ws.bufferedAmount;
  const serverTookPackets = sent - Math.ceil(unsent / (bytes + 5 + 4));
  const packets = c.since(n);
  const otherStream = await c.probe(shared.port, 99);
  const wsClose = wsCloseOf(c);
  await c.close();
  await sleep(2000);
  const rssAfterClose = rssKb(opts.serverPid);
  stuck.close();
  const mb = (kb) => (kb === null ? null : Math.round(kb / 1024));
  const growth = rssPeak !== null && rssBefore !== null ? mb(rssPeak - rssBefore) : null;
  const res = {
    initialCredit, packetBytes: bytes, sent, closeAt, stalledAt, unsentBytesAtEnd: unsent,
    serverTookPacketsApprox: serverTookPackets, packets: packets.slice(0, 10), packetCount: packets.length,
    wsClose, otherStreamWorked: otherStream,
    rssKb: { before: rssBefore, peak: rssPeak, after: rssAfter, afterWsClosed: rssAfterClose },
  };
  const what = closeAt !== null
    ? `CLOSE(1,${hex(c.packets.find(isClose).reason)}) after ~${closeAt} packets sent`
    : stalledAt !== null ? `no CLOSE; server stopped reading the WebSocket (~${serverTookPackets} of ${stalledAt} sent packets left the client)`
      : wsClose ? `WebSocket closed ${wsClose.code} after ${sent} packets`
        : otherStream ? `no CLOSE; all ${sent} packets (${mb(sent * bytes / 1024)} MiB) accepted`
          : `no CLOSE; all ${sent} packets (${mb(sent * bytes / 1024)} MiB) left the client, but the server no longer reads the WebSocket`;
  res.summary = `${what}; RSS +${growth ?? "?"} MiB (${mb(rssBefore)}→${mb(rssPeak)} MiB); other streams ${otherStream ? "work" : "blocked"}`;
  return res;
};
cases["data-past-credits"] = pastCredits(opts.abuseBytes);
cases["data-past-credits-8KiB"] = pastCredits(8 * 1024);

// a client that keeps to its credits, on streams whose peers never read: each stream should
// stall (no more CONTINUE) while the WebSocket's other streams go on
const slowPeers = (streams, bytes) => async () => {
  const stuck = await stuckPeer();
  const c = await v1();
  const initial = c.packets.find((p) => p.t === "CONTINUE" && p.id === 0).credit;
  const n = c.packets.length;
  const chunk = Buffer.alloc(bytes, 0x63);
  const perStream = [];
  for (let id = 1; id <= streams && c.open; id++) {
    c.send(connectPkt(id, stuck.port));
    let credit = initial, sent = 0, seen = c.packets.length;
    const grants = [];
    const deadline = Date.now() + 30000;
    while (sent < 1000 && c.open && Date.now() < deadline) {
      for (; seen < c.packets.length; seen++) {
        const p = c.packets[seen];
        if (p.t === "CONTINUE" && p.id === id) { grants.push(`${sent}:${p.credit}`); credit = p.credit; }
      }
      if (c.packets.some((p) => p.t === "CLOSE" && p.id === id)) break;
      if (credit <= 0) {
        const p = await c.waitFor((q) => q.id === id && (q.t === "CONTINUE" || q.t === "CLOSE"), 3000, seen);
        if (!p) break; // out of credit: the stream waits for its peer, as it should
        continue;
      }
      c.send(dataPkt(id, chunk));
      sent++; credit--;
      if (sent % 8 === 0) await sleep(0);
    }
    perStream.push({ id, sent, grants });
  }
  await sleep(500);
  const packets = c.since(n);
  const t = Date.now();
  const from = c.packets.length;
  const otherStream = await c.probe(shared.port, 99);
  const sent = perStream.reduce((a, x) => a + x.sent, 0);
  const res = {
    streams, packetBytes: bytes, sent, perStream, packets: packets.slice(0, 12), wsClose: wsCloseOf(c),
    clientUnsentBytes: c.ws.bufferedAmount, otherStreamWorked: otherStream, probeMs: Date.now() - t,
  };
  if (!otherStream && opts.stallWatchMs > 0) { // does the stall ever end, and how?
    const late = await c.waitFor((p) => p.id === 99 && p.t === "DATA", opts.stallWatchMs, from);
    const s = Math.round((Date.now() - t) / 1000);
    res.stallOutcome = late ? `the other stream answered after ${s} s`
      : c.closed ? `WebSocket closed ${c.closed.code}${c.closed.reason ? ` "${c.closed.reason}"` : ""} after ${s} s`
        : `still stalled after ${s} s`;
  }
  const closes = packets.filter((x) => x.startsWith("CLOSE"));
  const grantCount = perStream.reduce((a, x) => a + x.grants.length, 0);
  res.summary = `${streams} stream(s): sent ${perStream.map((x) => x.sent).join("+")} x ${Math.round(bytes / 1024)} KiB within credits (${grantCount} CONTINUE)`
    + `${closes.length ? `; ${closes.join(" ")}` : ""}; another stream ${otherStream ? "works" : "gets NO answer (WebSocket no longer read)"}${res.stallOutcome ? `; ${res.stallOutcome}` : ""}`;
  await c.close(); stuck.close();
  return res;
};
cases["slow-peer-within-credits"] = slowPeers(1, opts.abuseBytes);
cases["slow-peers-within-credits-3x16KiB"] = slowPeers(3, 16 * 1024);

cases["stream-open-confirmation"] = async () => {
  const r = await Conn.open(opts.url, ["wisp-v2"]);
  if (r.error) return { summary: `n/a: v2 handshake failed (${r.error})`, na: true };
  const c = r.conn;
  const first = await c.waitFor((p) => p.id === 0 && (p.t === "INFO" || p.t === "CONTINUE"), 2000);
  if (!first || first.t !== "INFO") { await c.close(); return { summary: "n/a: server speaks v1 (no INFO)", na: true }; }
  const offered = first.exts.some((e) => e.id === 0x05);
  c.send(infoPkt(2, 0, CLIENT_EXTS));
  await c.hello();
  const echo = await echoPeer();
  const refused = await closedPort();
  const n = c.packets.length;
  const t = Date.now();
  c.send(connectPkt(3, echo.port));
  const p = await c.waitFor((q) => q.id === 3, 1500, n);
  const ms = Date.now() - t;
  c.send(connectPkt(4, refused));
  const q = await c.waitFor((x) => x.id === 4, 3000, n);
  const res = { offered, onConnect: p ? fmt(p) : null, ms, onRefusedConnect: q ? fmt(q) : null, packets: c.since(n) };
  res.summary = `${offered ? "offered" : "not offered"}; open stream: ${p ? `${fmt(p)} after ${ms} ms` : "nothing within 1.5 s"}; refused: ${q ? fmt(q) : "nothing"}`;
  await c.close(); echo.close();
  return res;
};

// ---------------------------------------------------------------- main
const order = Object.keys(cases);
if (opts.list) {
  process.stdout.write(order.join("\n") + "\n");
  process.exit(0);
}
const selected = opts.cases ?? order;
for (const name of selected) if (!cases[name]) { process.stderr.write(`unknown case ${name}\n`); process.exit(2); }

shared = await echoPeer();
let failed = 0;
for (const name of selected) {
  const t = Date.now();
  let res;
  try {
    res = await Promise.race([
      cases[name](),
      sleep(200000).then(() => ({ summary: "case timed out (200 s)", error: "timeout" })),
    ]);
  } catch (e) {
    res = { summary: `error: ${e.message}`, error: e.message };
    failed++;
  }
  process.stdout.write(JSON.stringify({ case: name, server: opts.label, ...res, caseMs: Date.now() - t }) + "\n");
}
shared.close();
process.exit(failed ? 1 : 0);
