#!/usr/bin/env node
// Wisp test client driven by the real npm client @mercuryworkshop/wisp-js (tested with 0.5.0).
//
// Usage:
//   node wisp-js-client.mjs --url ws://127.0.0.1:PORT/wisp/ --version 1|2 \
//        --host 127.0.0.1 --port ECHOPORT [--mode echo|close-reason|udp-echo|opens|idle] \
//        [--streams 100] [--bytes 262144] [--timeout-ms 60000] [--max-chunk 16384 | --chunk N] \
//        [--seed 1] [--allow-fallback] [--modules /path/to/node_modules]
//
// Echo writes are log-uniform in [1, --max-chunk] bytes (a mix that finds framing bugs), or all --chunk bytes (the
// shape of bulk traffic: libcurl.js and epoxy-tls write TLS records of up to 16 KiB).
//
// The wisp-js package is located through --modules or the WISP_JS_MODULES env var
// (the node_modules folder that contains @mercuryworkshop/wisp-js); without either,
// normal Node resolution is tried.
//
// stdout: exactly ONE line of JSON. Library warnings go to stderr.
//   echo:         {"ok":true,"streams":N,"bytes":N*B,"sha256Mismatches":0,"ms":..., ...}
//   close-reason: {"ok":true,"closeReason":<number>, ...}
//   opens:        --streams N times, one after another: open a stream, echo one byte, close it; then as many plain TCP
//                 connect-echo-close with Node's net to the same echo server (the baseline, same process and runtime):
//                 {"ok":true,"wispP50Us":..,"tcpP50Us":..,"wispP90Us":..,"tcpP90Us":..,"opens":N}
//   idle:         opens --streams N streams and echoes one byte on each, prints {"ok":true,"held":N}, and holds them
//                 open until its stdin ends (the bench reads the server's RSS meanwhile)
//   failure:      {"ok":false,"error":"...", ...}
// Exit code: 0 on success, 1 on failure/timeout, 2 on usage error.
//
// Safety: the WebSocket URL must point at a loopback address (127.0.0.0/8, ::1, localhost).

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const startedAt = Date.now();
let finished = false;
let extraDiag = () => ({});

function emit(obj, code) {
  if (finished) return;
  finished = true;
  let diag = {};
  try { diag = extraDiag(); } catch { /* ignore */ }
  process.stdout.write(JSON.stringify({ ...obj, ...diag }) + "\n", () => process.exit(code));
  // safety net in case the write callback never fires
  setTimeout(() => process.exit(code), 2000).unref();
}
function fail(error, extra = {}, code = 1) {
  emit({ ok: false, error: String(error), ...extra }, code);
}

process.on("uncaughtException", (e) => fail(`uncaught exception: ${e && e.stack ? e.stack.split("\n")[0] : e}`));
process.on("unhandledRejection", (e) => fail(`unhandled rejection: ${e && e.stack ? e.stack.split("\n")[0] : e}`));

// ---------------------------------------------------------------- arguments
function parseArgs(argv) {
  const opts = {
    url: null, version: 2, host: "127.0.0.1", port: null, mode: "echo",
    streams: 100, bytes: 256 * 1024, timeoutMs: 60000, maxChunk: 16384, chunk: 0,
    seed: 1, allowFallback: false, modules: process.env.WISP_JS_MODULES || null, datagrams: 20,
  };
  const num = (name, v) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} needs a non-negative number, got ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`);
      return argv[++i];
    };
    switch (a) {
      case "--url": opts.url = next(); break;
      case "--version": opts.version = num("version", next()); break;
      case "--host": opts.host = next(); break;
      case "--port": opts.port = num("port", next()); break;
      case "--mode": opts.mode = next(); break;
      case "--streams": opts.streams = num("streams", next()); break;
      case "--bytes": opts.bytes = num("bytes", next()); break;
      case "--timeout-ms": opts.timeoutMs = num("timeout-ms", next()); break;
      case "--max-chunk": opts.maxChunk = num("max-chunk", next()); break;
      case "--chunk": opts.chunk = num("chunk", next()); break;
      case "--seed": opts.seed = num("seed", next()); break;
      case "--modules": opts.modules = next(); break;
      case "--allow-fallback": opts.allowFallback = true; break;
      case "--datagrams": opts.datagrams = num("datagrams", next()); break;
      case "--username": opts.username = next(); break;
      case "--password": opts.password = next(); break;
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  if (!opts.url) throw new Error("--url is required");
  if (opts.version !== 1 && opts.version !== 2) throw new Error("--version must be 1 or 2");
  if (opts.port == null || opts.port < 1 || opts.port > 65535) throw new Error("--port (destination port) is required, 1..65535");
  if (!["echo", "close-reason", "udp-echo", "opens", "idle"].includes(opts.mode)) throw new Error("--mode must be echo, close-reason, udp-echo, opens or idle");
  if (opts.mode === "echo" && opts.streams < 1) throw new Error("--streams must be >= 1");
  if (opts.maxChunk < 1) throw new Error("--max-chunk must be >= 1");
  let u;
  try { u = new URL(opts.url); } catch { throw new Error(`invalid --url ${opts.url}`); }
  if (u.protocol !== "ws:" && u.protocol !== "wss:") throw new Error("--url must be ws:// or wss://");
  const h = u.hostname.replace(/^\[|\]$/g, "");
  if (!(h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h))) {
    throw new Error(`refusing non-loopback --url host ${u.hostname}`);
  }
  return opts;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  fail(e.message, {}, 2);
}

// ---------------------------------------------------------------- load wisp-js
async function loadWispClient(modulesDir) {
  if (modulesDir) {
    const pkgDir = path.join(path.resolve(modulesDir), "@mercuryworkshop", "wisp-js");
    const pkg = JSON.parse(readFileSync(path.join(pkgDir, "package.json"), "utf8"));
    const rel = pkg.exports?.["./client"]?.import ?? "./src/entrypoints/client.mjs";
    const mod = await import(pathToFileURL(path.join(pkgDir, rel)).href);
    return { mod, version: pkg.version };
  }
  const mod = await import("@mercuryworkshop/wisp-js/client");
  return { mod, version: null };
}

// ---------------------------------------------------------------- PRNG (mulberry32)
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0);
  };
}
function randomBytes(rand, n) {
  const buf = Buffer.allocUnsafe(n);
  let i = 0;
  for (; i + 4 <= n; i += 4) buf.writeUInt32LE(rand(), i);
  if (i < n) {
    const r = rand();
    for (let k = 0; i < n; i++, k++) buf[i] = (r >>> (8 * k)) & 0xff;
  }
  return buf;
}
// chunk sizes: log-uniform in [1, maxChunk], with occasional 1-byte and max-size chunks
function chunkSize(rand, maxChunk) {
  const r = rand() % 16;
  if (r === 0) return 1;
  if (r === 1) return maxChunk;
  const exp = (rand() / 0x100000000) * Math.log2(maxChunk);
  return Math.max(1, Math.min(maxChunk, Math.floor(2 ** exp)));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- main
async function main() {
  const { mod, version: wispJsVersion } = await loadWispClient(opts.modules);
  const { client } = mod;
  const ClientConnection = client.ClientConnection;

  // raw tap on every WebSocket message the library receives (diagnostics only)
  const tap = {
    wsConnects: 0, packets: 0, byType: {}, continuePackets: 0, stream0Continue: null,
    serverInfo: null, textFrames: 0,
  };
  const origOnMsg = ClientConnection.prototype.on_ws_msg;
  ClientConnection.prototype.on_ws_msg = function (event) {
    try {
      if (typeof event.data === "string") {
        tap.textFrames++;
      } else {
        const b = new Uint8Array(event.data);
        tap.packets++;
        if (b.length >= 5) {
          const type = b[0];
          const sid = b[1] | (b[2] << 8) | (b[3] << 16) | (b[4] << 24);
          tap.byType[type] = (tap.byType[type] || 0) + 1;
          const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
          if (type === 0x03) {
            tap.continuePackets++;
            if (sid === 0 && tap.stream0Continue === null && b.length >= 9) tap.stream0Continue = dv.getUint32(5, true);
          }
          if (type === 0x05 && sid === 0 && tap.serverInfo === null && b.length >= 7) {
            const exts = [];
            let o = 7;
            while (o + 5 <= b.length) {
              const id = b[o];
              const len = dv.getUint32(o + 1, true);
              exts.push({ id, len });
              o += 5 + len;
            }
            tap.serverInfo = { major: b[5], minor: b[6], extensions: exts };
          }
        }
      }
    } catch { /* diagnostics only */ }
    return origOnMsg.call(this, event);
  };
  const origConnectWs = ClientConnection.prototype.connect_ws;
  ClientConnection.prototype.connect_ws = function () {
    tap.wsConnects++;
    return origConnectWs.call(this);
  };

  // With --password: the library's password extension (v2) beside the ones it offers by itself (UDP, MOTD).
  const { extensions } = mod;
  const wisp_extensions = opts.password === undefined ? undefined : [
    new extensions.PasswordAuthExtension({ client_config: { username: opts.username ?? "", password: opts.password } }),
    new extensions.UDPExtension({ client_config: {} }),
    new extensions.MOTDExtension({ client_config: {} }),
  ];
  const conn = new ClientConnection(opts.url, { wisp_version: opts.version, wisp_extensions });

  extraDiag = () => ({
    mode: opts.mode,
    requestedVersion: opts.version,
    wispVersion: conn.wisp_version,
    subprotocol: conn.ws?.protocol || "",
    infoReceived: conn.info_received,
    initialCredit: conn.max_buffer_size,
    udpEnabled: conn.udp_enabled,
    motd: conn.server_motd ?? null,
    serverInfo: tap.serverInfo,
    wsConnects: tap.wsConnects,
    packetsReceived: tap.packets,
    continuePackets: tap.continuePackets,
    textFrames: tap.textFrames,
    wispJs: wispJsVersion,
  });

  const deadline = startedAt + opts.timeoutMs;
  const timeoutPromise = new Promise((_, reject) => {
    const t = setTimeout(() => reject(new Error(`timeout after ${opts.timeoutMs} ms`)), Math.max(0, deadline - Date.now()));
    t.unref();
  });

  // wait for the wisp handshake (CONTINUE on stream 0, after INFO exchange in v2)
  const opened = new Promise((resolve, reject) => {
    conn.onopen = () => resolve();
    conn.onclose = () => reject(new Error("websocket closed before the wisp connection opened"));
    conn.onerror = () => reject(new Error("websocket error before the wisp connection opened"));
  });
  await Promise.race([opened, timeoutPromise]);

  if (opts.version === 2 && conn.wisp_version !== 2 && !opts.allowFallback) {
    throw new Error(`requested wisp v2 but the connection ended up as v${conn.wisp_version} (infoReceived=${conn.info_received}, wsConnects=${tap.wsConnects})`);
  }

  let wsClosed = false;
  conn.onclose = () => { wsClosed = true; };
  conn.onerror = () => { wsClosed = true; };

  if (opts.mode === "close-reason") {
    const result = await Promise.race([closeReasonMode(conn, () => wsClosed), timeoutPromise]);
    try { conn.close(); } catch { /* ignore */ }
    emit({ ok: true, closeReason: result.reason, ms: Date.now() - startedAt }, 0);
    return;
  }

  if (opts.mode === "udp-echo") {
    const result = await Promise.race([udpEchoMode(conn), timeoutPromise]).catch((e) => ({ error: e.message }));
    try { conn.close(); } catch { /* ignore */ }
    if (result.error) fail(result.error, { ms: Date.now() - startedAt });
    else emit({ ok: true, ...result, ms: Date.now() - startedAt }, 0);
    return;
  }

  if (opts.mode === "opens") {
    const result = await Promise.race([opensMode(conn), timeoutPromise]).catch((e) => ({ error: e.message }));
    try { conn.close(); } catch { /* ignore */ }
    if (result.error) fail(result.error, { ms: Date.now() - startedAt });
    else emit({ ok: true, ...result, ms: Date.now() - startedAt }, 0);
    return;
  }

  if (opts.mode === "idle") {
    const result = await Promise.race([idleMode(conn), timeoutPromise]).catch((e) => ({ error: e.message }));
    if (result.error) { fail(result.error, { ms: Date.now() - startedAt }); return; }
    // One line now, then hold every stream open until stdin ends (not emit(): that exits).
    finished = true;
    process.stdout.write(JSON.stringify({ ok: true, ...result, ms: Date.now() - startedAt }) + "\n");
    process.stdin.resume();
    process.stdin.on("end", () => { try { conn.close(); } catch { /* ignore */ } process.exit(0); });
    return;
  }

  const state = { streams: [], done: 0 };
  try {
    await Promise.race([echoMode(conn, state, () => wsClosed), timeoutPromise]);
  } catch (e) {
    const mism = state.streams.filter((s) => s.mismatch).length;
    const incomplete = state.streams.filter((s) => !s.done).map((s) => s.diag());
    fail(e.message, {
      streams: opts.streams, bytes: opts.streams * opts.bytes, sha256Mismatches: mism,
      streamsDone: state.done, ms: Date.now() - startedAt,
      incomplete: incomplete.slice(0, 5), incompleteCount: incomplete.length,
    });
    return;
  }
  const mismatches = state.streams.filter((s) => s.mismatch).length;
  const serverCloses = state.streams.filter((s) => s.closeReason !== null).map((s) => ({ id: s.id, reason: s.closeReason }));
  try { conn.close(); } catch { /* ignore */ }
  const ok = mismatches === 0;
  emit({
    ok, ...(ok ? {} : { error: `${mismatches} stream(s) had SHA-256 mismatches` }),
    streams: opts.streams, bytes: opts.streams * opts.bytes, sha256Mismatches: mismatches,
    ms: Date.now() - startedAt,
    serverClosesDuringTest: serverCloses.slice(0, 5),
  }, ok ? 0 : 1);
}

async function closeReasonMode(conn, isWsClosed) {
  const stream = conn.create_stream(opts.host, opts.port, "tcp");
  return await new Promise((resolve, reject) => {
    stream.onmessage = () => { /* data means it connected; keep waiting for CLOSE until timeout */ };
    stream.onclose = (reason) => {
      // the library also calls onclose(0x03) for every stream when the WebSocket itself
      // closes; at that point ws.readyState is CLOSED, so tell the two apart.
      if (isWsClosed() || conn.ws.readyState !== conn.ws.OPEN) {
        reject(new Error(`websocket closed before a CLOSE packet arrived for the stream (library reported ${reason})`));
      } else {
        resolve({ reason });
      }
    };
  });
}

// udp-echo: --streams UDP streams to a UDP echo peer, --datagrams datagrams each (sizes 1..1400, and one of 60000
// bytes), every datagram a DATA packet of its own; each echoed message must equal exactly one datagram sent on
// its stream (boundaries kept: never split, never merged). Each stream sends its next datagram once the last one
// came back (or after 1 s: UDP may lose one), so no burst overflows a socket buffer. Reports how many came back.
function udpEchoMode(conn) {
  const N = opts.streams, D = opts.datagrams;
  let received = 0, foreign = 0, lost = 0, finished = 0;
  const closes = [];
  return new Promise((resolve) => {
    const done = () => resolve({ streams: N, datagramsSent: N * D, datagramsReceived: received, lost, notOneDatagram: foreign, closes, udpEnabled: conn.udp_enabled });
    for (let i = 0; i < N; i++) {
      const rand = prng((opts.seed * 7919 + i) >>> 0);
      const stream = conn.create_stream(opts.host, opts.port, "udp");
      let d = 0, waiting = null, timer = null;
      const next = () => {
        if (d === D) { if (++finished === N) done(); return; }
        const size = d === i % D ? 60000 : 1 + (rand() % 1400);
        const datagram = Buffer.alloc(size);
        for (let k = 0; k < size; k++) datagram[k] = (rand() + k + d) & 0xff;
        waiting = datagram.toString("base64");
        d++;
        timer = setTimeout(() => { lost++; waiting = null; next(); }, 1000);
        stream.send(new Uint8Array(datagram));
      };
      stream.onmessage = (data) => {
        if (waiting !== null && Buffer.from(data).toString("base64") === waiting) {
          received++;
          waiting = null;
          clearTimeout(timer);
          next();
        } else foreign++;
      };
      stream.onclose = (reason) => { closes.push(reason); };
      next();
    }
  });
}

// opens: the latency of opening a stream, the way a page opens one: CONNECT and the first DATA at once (wisp-js sends
// both without waiting), the echo back, CLOSE. The baseline is the same exchange over a plain TCP connection from this
// same process (Node's net), so both sides of the comparison pay the same runtime's costs.
async function opensMode(conn) {
  const N = opts.streams, warm = Math.min(100, N);
  const one = new Uint8Array([42]);
  const wispOnce = () => new Promise((resolve, reject) => {
    const stream = conn.create_stream(opts.host, opts.port, "tcp");
    stream.onmessage = () => { stream.onclose = null; stream.close(0x02); resolve(); };
    stream.onclose = (reason) => reject(new Error(`stream closed with reason ${reason} before its echo`));
    stream.send(one);
  });
  const net = await import("node:net");
  const tcpOnce = () => new Promise((resolve, reject) => {
    const socket = net.connect({ host: opts.host, port: opts.port, noDelay: true }, () => socket.write(one));
    socket.once("data", () => { socket.destroy(); resolve(); });
    socket.once("error", reject);
  });
  const half = Math.max(1, Math.ceil(N / 2));
  const measure = async (once) => {
    for (let i = 0; i < warm; i++) await once();
    const samples = new Float64Array(half);
    for (let i = 0; i < half; i++) {
      const start = process.hrtime.bigint();
      await once();
      samples[i] = Number(process.hrtime.bigint() - start) / 1000;
    }
    samples.sort();
    return { p50: samples[Math.floor(half / 2)], p90: samples[Math.floor(half * 0.9)] };
  };
  // In halves, interleaved (TCP, Wisp, TCP, Wisp), so a burst of other work on the machine falls on both.
  const runs = { wisp: [], tcp: [] };
  for (let r = 0; r < 2; r++) {
    runs.tcp.push(await measure(tcpOnce));
    runs.wisp.push(await measure(wispOnce));
  }
  const mid = (xs, k) => (xs[0][k] + xs[1][k]) / 2;
  return { opens: half * 2, wispP50Us: mid(runs.wisp, "p50"), tcpP50Us: mid(runs.tcp, "p50"), wispP90Us: mid(runs.wisp, "p90"), tcpP90Us: mid(runs.tcp, "p90") };
}

// idle: N streams held open, each echoed once (so each is connected at the server), in batches of 500.
async function idleMode(conn) {
  const N = opts.streams;
  const streams = [];
  for (let at = 0; at < N; at += 500) {
    const batch = [];
    for (let i = at; i < Math.min(N, at + 500); i++) {
      batch.push(new Promise((resolve, reject) => {
        const stream = conn.create_stream(opts.host, opts.port, "tcp");
        stream.onmessage = () => resolve();
        stream.onclose = (reason) => reject(new Error(`stream ${i} closed with reason ${reason} while held`));
        stream.send(new Uint8Array([7]));
        streams.push(stream);
      }));
    }
    await Promise.all(batch);
  }
  return { held: streams.length };
}

function echoMode(conn, state, isWsClosed) {
  const N = opts.streams;
  const B = opts.bytes;
  return new Promise((resolve, reject) => {
    let settled = false;
    const finishOne = () => {
      state.done++;
      if (state.done === N && !settled) { settled = true; resolve(); }
    };
    const failAll = (msg) => { if (!settled) { settled = true; reject(new Error(msg)); } };

    for (let i = 0; i < N; i++) {
      const id = i + 1;
      const rand = prng((opts.seed * 1000003 + id) >>> 0);
      const payload = randomBytes(rand, B);
      const expected = createHash("sha256").update(payload).digest("hex");
      const stream = conn.create_stream(opts.host, opts.port, "tcp");
      const s = {
        id, stream, sent: 0, received: 0, done: false, mismatch: false, closeReason: null,
        hash: createHash("sha256"), creditWaiters: [], continues: 0,
        diag() {
          return { stream: this.stream.stream_id, sent: this.sent, received: this.received, credit: this.stream.buffer_size, queued: this.stream.send_buffer.length, continues: this.continues, closeReason: this.closeReason };
        },
      };
      state.streams.push(s);

      // hook the library's CONTINUE handling so the pump can wait for credit
      const origContinue = stream.continue_received.bind(stream);
      stream.continue_received = (n) => {
        s.continues++;
        origContinue(n);
        const w = s.creditWaiters.splice(0);
        for (const f of w) f();
      };

      stream.onmessage = (data) => {
        if (s.done) return;
        s.received += data.length;
        s.hash.update(data);
        if (s.received >= B) {
          const got = s.hash.digest("hex");
          s.mismatch = s.received !== B || got !== expected;
          s.done = true;
          try { stream.close(0x02); } catch { /* ignore */ }
          finishOne();
        }
      };
      stream.onclose = (reason) => {
        s.closeReason = reason;
        if (s.done) return;
        if (isWsClosed() || conn.ws.readyState !== conn.ws.OPEN) {
          failAll(`websocket closed while stream ${stream.stream_id} had received ${s.received}/${B} bytes`);
        } else {
          failAll(`server closed stream ${stream.stream_id} with reason ${reason} after ${s.received}/${B} bytes echoed`);
        }
      };

      if (B === 0) { // nothing to echo: just open and close the stream
        s.done = true;
        stream.close(0x02);
        finishOne();
        continue;
      }

      // sender pump: respect the per-stream credit (packets) that wisp-js tracks in
      // stream.buffer_size, and keep the WebSocket's own send buffer bounded.
      (async () => {
        while (s.sent < B && !settled) {
          if (stream.buffer_size <= 0) {
            await new Promise((r) => s.creditWaiters.push(r));
            continue;
          }
          if (conn.ws.bufferedAmount > 8 * 1024 * 1024) {
            await sleep(1);
            continue;
          }
          const n = Math.min(opts.chunk || chunkSize(rand, opts.maxChunk), B - s.sent);
          stream.send(payload.subarray(s.sent, s.sent + n));
          s.sent += n;
          if ((s.sent & 0xffff) < n) await new Promise((r) => setImmediate(r)); // yield now and then
        }
      })().catch((e) => failAll(`send pump for stream ${stream.stream_id}: ${e.message}`));
    }
  });
}

if (opts) {
  main().catch((e) => fail(e && e.message ? e.message : String(e), { ms: Date.now() - startedAt }));
}
