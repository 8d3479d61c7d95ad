// The Direct Sockets suite, shared by Node (direct-sockets.test.js) and Chromium (direct-sockets.html): TCPSocket and
// UDPSocket from directSockets() against the live server, real peers and a real Redis, over each transport.
// env: { directSockets, url, transport ("ws2s" | "wisp"), options, explainer (the text of wicg/explainer.md), echoPort,
//   greeterPort (says "hello from peer\n" and closes), udpEchoPort, refusedPort, deniedPort (the server's
//   destinations.deny lists it), redisPort, sourcePort (sends
//   pipeBytes bytes and closes), sinkPort (reads all; the host's test checks what it got), pipeBytes, WebSocket, report }

import { redisExchange } from "./redis-over-direct-sockets.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const KiB = 1024;
const MiB = 1024 * KiB;

/** Rejects with what `promise` rejected with, or fails if it resolved. */
async function rejection(promise, assert) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("expected a rejection");
}

/** Reads from a reader until `length` bytes have come: their text. */
async function readText(reader, length) {
  let text = "";
  let got = 0;
  while (got < length) {
    const { value, done } = await reader.read();
    if (done) break;
    got += value.byteLength;
    text += decoder.decode(value, { stream: true });
  }
  return text;
}

// ---- The explainer's examples, from its own text --------------------------------------------------------------------

/**
 * The JavaScript examples of the explainer's section `heading` (## TCPSocket, ## UDPSocket), each with the heading it
 * sits under. The IDL block written as JavaScript (`dictionary UDPMessage`) is not an example and is left out.
 */
function examples(explainer, heading) {
  const section = explainer.split(/^## /m).find((part) => part.startsWith(`${heading}\n`));
  const found = [];
  let title = "";
  let code = null;
  for (const line of section.split("\n")) {
    if (code !== null) {
      if (line.startsWith("```")) {
        if (!/^dictionary /m.test(code.join("\n"))) found.push({ title, code: code.join("\n") });
        code = null;
      } else code.push(line);
    } else if (line.startsWith("```javascript")) code = [];
    else if (/^#{3,5} /.test(line)) title = line.replace(/^#+ /, "");
  }
  return found;
}

/** Names an example's `...` hands to the test (those declared there; the others are undefined). */
const VISIBLE = ["tcpSocket", "udpSocket", "readable", "writable", "reader", "writer", "message", "value", "data"];

/**
 * Runs one example as the explainer writes it, with two substitutions a reader makes too: each line `...` ("do stuff
 * with the socket") becomes `await step({ the names declared there })`, where the test does its part, and the
 * placeholder `new TCPSocket(...)` takes the `remoteAddress` and `remotePort` the test gives. The examples' own
 * 'example.com' port 7 (echo) is mapped to loopback peers by the classes given: nothing leaves the machine.
 */
async function runExample(code, { TCPSocket, UDPSocket, remoteAddress, remotePort, localAddress, step }) {
  const names = VISIBLE.map((name) => `${name}: (() => { try { return ${name}; } catch { return undefined; } })()`).join(", ");
  const body = code
    .replace(/^\s*\.\.\.\s*$/gm, `await step({ ${names} });`)
    .replace(/new TCPSocket\(\.\.\.\)/g, "new TCPSocket(remoteAddress, remotePort)");
  const AsyncFunction = (async () => {}).constructor;
  const run = new AsyncFunction("TCPSocket", "UDPSocket", "remoteAddress", "remotePort", "localAddress", "step", `{\n${body}\n}`);
  return run(TCPSocket, UDPSocket, remoteAddress, remotePort, localAddress, step);
}

/** The classes with the explainer's 'example.com' port 7 mapped to the loopback peers (TCP echo, UDP echo). */
function mapped(sockets, env) {
  const place = (address, port, echo) => (address === "example.com" && port === 7 ? ["127.0.0.1", echo] : [address, port]);
  return {
    TCPSocket: class extends sockets.TCPSocket {
      constructor(address, port, options) {
        super(...place(address, port, env.echoPort), options);
      }
    },
    UDPSocket: class extends sockets.UDPSocket {
      constructor(options) {
        const [remoteAddress, remotePort] = place(options.remoteAddress, options.remotePort, env.udpEchoPort);
        super(options.remoteAddress === undefined ? options : { ...options, remoteAddress, remotePort });
      }
    },
  };
}

function sockets(env, extra = {}) {
  return env.directSockets(env.url, { ...env.options, transport: env.transport, ...extra });
}

export const cases = [
  {
    name: "the explainer's TCPSocket examples run as written: open, echo, close; read a greeting; write",
    async run(env, assert) {
      const classes = mapped(sockets(env), env);
      const found = examples(env.explainer, "TCPSocket");
      assert.deepEqual(found.map((e) => e.title), ["Opening/Closing the socket", "Reading", "Writing"]);
      const [openClose, reading, writing] = found;

      // Opening/Closing: at its `...` the test echoes through the streams, then the example closes the socket.
      let opened;
      await runExample(openClose.code, {
        ...classes,
        step: async ({ tcpSocket, readable, writable }) => {
          opened = tcpSocket;
          const writer = writable.getWriter();
          const reader = readable.getReader();
          await writer.write(encoder.encode("ping from the explainer"));
          assert.equal(await readText(reader, 23), "ping from the explainer");
          writer.releaseLock();
          reader.releaseLock();
        },
      });
      await opened.closed; // its close() (unlocked streams) succeeded

      // Reading: a peer that speaks first.
      let heard;
      let socket;
      await runExample(reading.code, {
        ...classes, remoteAddress: "127.0.0.1", remotePort: env.greeterPort,
        step: async ({ message, reader, tcpSocket }) => {
          heard = message;
          socket = tcpSocket;
          reader.releaseLock(); // as the example says to
        },
      });
      assert.equal(heard, "hello from peer\n");
      await socket.close();

      // Writing: to the echo peer; the test reads what came back.
      let echoed;
      await runExample(writing.code, {
        ...classes, remoteAddress: "127.0.0.1", remotePort: env.echoPort,
        step: async ({ writer, tcpSocket }) => {
          const reader = (await tcpSocket.opened).readable.getReader();
          echoed = await readText(reader, "Some user-created tcp data".length);
          reader.releaseLock();
          writer.releaseLock();
          socket = tcpSocket;
        },
      });
      assert.equal(echoed, "Some user-created tcp data");
      await socket.close();
      await socket.closed;
    },
  },
  {
    name: "the explainer's UDPSocket examples: connected mode runs as written, bound mode is refused as not supported",
    async run(env, assert) {
      const classes = mapped(sockets(env), env);
      const found = examples(env.explainer, "UDPSocket");
      assert.deepEqual(found.map((e) => e.title),
        ["Connected version", "Bound version", "Connected mode", "Bound mode", "Connected mode", "Bound mode"]);
      const [connected, bound, readConnected, readBound, writeConnected, writeBound] = found;

      let opened;
      await runExample(connected.code, {
        ...classes,
        step: async ({ udpSocket, readable, writable }) => {
          opened = udpSocket;
          const writer = writable.getWriter();
          const reader = readable.getReader();
          await writer.write({ data: encoder.encode("datagram from the explainer") });
          const { value } = await reader.read();
          assert.equal(decoder.decode(value.data), "datagram from the explainer");
          writer.releaseLock();
          reader.releaseLock();
        },
      });
      await opened.closed;

      // Writing, connected: both datagrams (a Uint8Array, then an ArrayBuffer) come back from the echo.
      let echoes;
      await runExample(writeConnected.code, {
        ...classes, remoteAddress: "127.0.0.1", remotePort: env.udpEchoPort,
        step: async ({ writer, udpSocket }) => {
          const reader = (await udpSocket.opened).readable.getReader();
          echoes = [decoder.decode((await reader.read()).value.data), decoder.decode((await reader.read()).value.data)];
          reader.releaseLock();
          writer.releaseLock();
          opened = udpSocket;
        },
      });
      assert.deepEqual(echoes, ["Some user-created datagram", "Some user-created datagram"]);
      await opened.close();

      // Reading, connected, is not run: its peer would have to send first to an address it has never heard from.
      assert.match(readConnected.code, /reader\.read\(\)/);
      for (const example of [bound, readBound, writeBound]) {
        const error = await rejection(runExample(example.code, { ...classes, localAddress: "127.0.0.1", step: async () => {} }), assert);
        assert.equal(error.name, "NotSupportedError", error.message);
      }
    },
  },
  {
    name: "the explainer's rules: arguments checked as WebIDL does, close() refused while a stream is locked, DOMException names",
    async run(env, assert) {
      const { TCPSocket, UDPSocket } = sockets(env);
      assert.throws(() => new TCPSocket("127.0.0.1"), TypeError);
      assert.throws(() => new TCPSocket("127.0.0.1", 70000), TypeError);
      assert.throws(() => new TCPSocket("127.0.0.1", env.echoPort, { keepAliveDelay: -1 }), TypeError);
      assert.throws(() => new TCPSocket("127.0.0.1", env.echoPort, { dnsQueryType: "ipv5" }), TypeError);
      assert.throws(() => new UDPSocket({ remoteAddress: "127.0.0.1", remotePort: 1, localAddress: "127.0.0.1" }), TypeError);
      assert.throws(() => new UDPSocket({ remoteAddress: "127.0.0.1" }), TypeError);

      const socket = new TCPSocket("127.0.0.1", env.echoPort);
      const { readable, writable } = await socket.opened;
      const reader = readable.getReader();
      const locked = await rejection(socket.close(), assert);
      assert.equal(locked.name, "InvalidStateError");
      reader.releaseLock();
      const writer = writable.getWriter();
      assert.equal((await rejection(socket.close(), assert)).name, "InvalidStateError");
      writer.releaseLock();
      await socket.close();
      await socket.closed;

      // Refused by the peer's machine: NetworkError, from opened and closed alike.
      const refused = new TCPSocket("127.0.0.1", env.refusedPort);
      const error = await rejection(refused.opened, assert);
      assert.equal(error.name, "NetworkError");
      assert.equal((await rejection(refused.closed, assert)).name, "NetworkError");
      // Refused by the server's policy (a loopback port its destinations.deny lists): NotAllowedError, ws2s's words kept.
      const forbidden = new TCPSocket("127.0.0.1", env.deniedPort);
      const policy = await rejection(forbidden.opened, assert);
      assert.equal(policy.name, "NotAllowedError", policy.message);
      assert.equal(policy.cause?.code, 4);

      // A UDP message names no destination in connected mode; a TCP writable takes bytes only.
      const udp = new UDPSocket({ remoteAddress: "127.0.0.1", remotePort: env.udpEchoPort });
      const udpWriter = (await udp.opened).writable.getWriter();
      const misaddressed = await rejection(udpWriter.write({ data: new Uint8Array(1), remoteAddress: "127.0.0.1", remotePort: 9 }), assert);
      assert.equal(misaddressed.name, "TypeError");
      udpWriter.releaseLock();
      await udp.close().catch(() => {});
      const tcp = new TCPSocket("127.0.0.1", env.echoPort);
      const tcpWriter = (await tcp.opened).writable.getWriter();
      assert.equal((await rejection(tcpWriter.write("text"), assert)).name, "TypeError");
      tcpWriter.releaseLock();
      await tcp.close().catch(() => {});
    },
  },
  {
    name: "BYOB reads fill the reader's own buffer, a chunk split across reads, and the readable ends when the peer closes",
    async run(env, assert) {
      const { TCPSocket } = sockets(env);
      const socket = new TCPSocket("127.0.0.1", env.echoPort);
      const { readable, writable } = await socket.opened;
      const writer = writable.getWriter();
      const sent = new Uint8Array(100).map((_, i) => i);
      await writer.write(sent);
      const reader = readable.getReader({ mode: "byob" });
      const got = [];
      let buffer = new ArrayBuffer(7);
      while (got.length < sent.length) {
        const { value, done } = await reader.read(new Uint8Array(buffer));
        assert.equal(done, false);
        assert.ok(value.byteLength <= 7);
        got.push(...value);
        buffer = value.buffer; // the same memory, handed back
      }
      assert.deepEqual(got, [...sent]);
      reader.releaseLock();
      writer.releaseLock();
      await socket.close();

      // The greeter says its line and closes: the readable ends (done), the writable closes (FIN), closed resolves.
      const greeted = new TCPSocket("127.0.0.1", env.greeterPort);
      const streams = await greeted.opened;
      const lineReader = streams.readable.getReader();
      let text = "";
      for (let r = await lineReader.read(); !r.done; r = await lineReader.read()) text += decoder.decode(r.value);
      assert.equal(text, "hello from peer\n");
      await streams.writable.close();
      await greeted.closed;
    },
  },
  {
    name: "a Redis exchange written against Direct Sockets alone runs unchanged (the classes installed as the globals)",
    async run(env, assert) {
      const { TCPSocket } = sockets(env);
      const before = globalThis.TCPSocket;
      globalThis.TCPSocket = TCPSocket;
      try {
        const key = `direct-sockets-${env.transport}-${Math.random().toString(36).slice(2)}`;
        const replies = await redisExchange("127.0.0.1", env.redisPort, [
          ["SET", key, "grüße over Direct Sockets"], ["GET", key], ["INCR", `${key}:n`], ["INCR", `${key}:n`],
          ["RPUSH", `${key}:l`, "a", "b"], ["LRANGE", `${key}:l`, 0, -1], ["GET", `${key}:missing`], ["HGET", key, "x"],
          ["DEL", key, `${key}:n`, `${key}:l`],
        ]);
        assert.deepEqual(replies.slice(0, 7), ["OK", "grüße over Direct Sockets", 1, 2, 2, ["a", "b"], null]);
        assert.match(replies[7].message, /^WRONGTYPE/);
        assert.equal(replies[8], 3);
      } finally {
        globalThis.TCPSocket = before;
      }
    },
  },
  {
    name: "a UDP socket nobody reads keeps receiveBufferSize bytes of datagrams and drops the rest, as a full receive buffer does",
    async run(env, assert) {
      let arrived = 0;
      let allArrived;
      const all = new Promise((resolve, reject) => {
        allArrived = resolve;
        setTimeout(() => reject(new Error(`only ${arrived} of 20 echoes arrived in 10 s`)), 10_000);
      });
      const Base = env.WebSocket ?? globalThis.WebSocket;
      class Counting extends Base {
        constructor(...args) {
          super(...args);
          this.addEventListener("message", (event) => {
            if (typeof event.data === "string") return;
            // Over Wisp, only DATA packets (type 2) are datagrams.
            if (env.transport === "wisp" && new Uint8Array(event.data)[0] !== 2) return;
            // After this message's task: the socket has handled it by then (a task boundary, not a wait for time).
            if (++arrived === 20) setTimeout(allArrived, 0);
          });
        }
      }
      const { UDPSocket } = sockets(env, { WebSocket: Counting });
      const udp = new UDPSocket({ remoteAddress: "127.0.0.1", remotePort: env.udpEchoPort, receiveBufferSize: 4000 });
      const { readable, writable } = await udp.opened;
      const writer = writable.getWriter();
      for (let i = 0; i < 20; i++) await writer.write({ data: new Uint8Array(1000).fill(i) });
      await all; // the 20 echoes have come to the page, nobody reading
      const reader = readable.getReader();
      const kept = [];
      for (let i = 0; i < 4; i++) kept.push((await reader.read()).value.data[0]);
      assert.deepEqual(kept, [0, 1, 2, 3]);
      // The other sixteen were dropped: the next datagram read is one sent after them.
      await writer.write({ data: new Uint8Array(10).fill(99) });
      assert.equal((await reader.read()).value.data[0], 99);
      reader.releaseLock();
      writer.releaseLock();
      await udp.close();
    },
  },
  {
    name: "writes wait for ws2s: 4 MiB written through the writable arrive at the echo whole, in order",
    async run(env, assert) {
      const { TCPSocket } = sockets(env);
      const socket = new TCPSocket("127.0.0.1", env.echoPort);
      const { readable, writable } = await socket.opened;
      const total = 4 * MiB;
      const chunk = new Uint8Array(64 * KiB);
      const writing = (async () => {
        const writer = writable.getWriter();
        for (let at = 0; at < total; at += chunk.length) {
          for (let i = 0; i < chunk.length; i++) chunk[i] = (at + i) % 251; // the same buffer, reused once each write resolves
          await writer.ready;
          await writer.write(chunk);
        }
        writer.releaseLock();
      })();
      const reader = readable.getReader();
      let got = 0;
      let wrong = -1;
      while (got < total) {
        const { value, done } = await reader.read();
        if (done) break;
        for (let i = 0; i < value.length && wrong < 0; i++) if (value[i] !== (got + i) % 251) wrong = got + i;
        got += value.length;
      }
      await writing;
      assert.equal(wrong, -1, `byte ${wrong} is not what was written there`);
      assert.equal(got, total);
      reader.releaseLock();
      await socket.close();
    },
  },
];

/**
 * The bound on what an unread socket holds (ws2s binary mode, resumable: acks as the app reads, and the server reads
 * the peer at most its window, 1 MiB, ahead of the acks): `pipeBytes` from the source peer piped through a slow consumer
 * into the sink peer. Counts what came over the WebSocket and what the consumer took; reports the most held between.
 * `bounded: false` is the same pipe on a socket that is not resumable (the baseline: nothing holds the peer back).
 * `sample`: called (and awaited) every 2 MiB the consumer takes.
 */
export async function slowPipe(env, { bounded = true, sample = null } = {}) {
  let arrived = 0;
  let taken = 0;
  let most = 0;
  const Base = env.WebSocket ?? globalThis.WebSocket;
  class Counting extends Base {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (event) => {
        if (typeof event.data === "string") return;
        arrived += event.data.byteLength;
        most = Math.max(most, arrived - taken);
      });
    }
  }
  const { TCPSocket } = env.directSockets(env.url, { ...env.options, transport: "ws2s", WebSocket: Counting });
  const source = new TCPSocket("127.0.0.1", env.sourcePort, bounded ? {} : { resumable: false });
  const sink = new TCPSocket("127.0.0.1", env.sinkPort);
  const [from, to] = await Promise.all([source.opened, sink.opened]);
  let sincePause = 0;
  const slow = new TransformStream({
    async transform(chunk, controller) {
      taken += chunk.byteLength;
      sincePause += chunk.byteLength;
      if (sincePause >= 256 * KiB) {
        sincePause = 0;
        await new Promise((resolve) => setTimeout(resolve, 8)); // the consumer's pace (about 30 MB/s), not a wait for anything
        if (taken % (2 * MiB) < 256 * KiB) await sample?.(); // the page's memory, every 2 MiB (direct-sockets-pipe.html)
      }
      controller.enqueue(chunk);
    },
  });
  const started = Date.now();
  await from.readable.pipeThrough(slow).pipeTo(to.writable);
  await Promise.all([source.close(), sink.close()]);
  return { bytes: taken, heldMost: most, ms: Date.now() - started };
}

export const pipeCase = {
  name: "an unread socket holds its peer back: 64 MiB piped through a slow consumer, ws2s.js never holds more than its window",
  async run(env, assert) {
    const { bytes, heldMost, ms } = await slowPipe(env);
    env.report?.(`piped ${bytes} bytes in ${ms} ms; the most held unread: ${heldMost} bytes`);
    assert.equal(bytes, env.pipeBytes);
    // The server's window (1 MiB: it reads the peer while it keeps less, so its last read may go past), what has been read
    // and not yet acknowledged (under 64 KiB), and the chunks pipeTo has taken ahead of the slow consumer.
    assert.ok(heldMost <= 2 * MiB, `held ${heldMost} bytes unread`);
  },
};
