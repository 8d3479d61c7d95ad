// Resumable sockets against a real ws2s (node --test, from the host's JsClientTests): the WebSocket goes through a
// TCP proxy in this script that the tests reset mid-transfer and then let through again. Needs WS2S_URL (default
// grace), SHORT_GRACE_URL (resume.graceSeconds 1), ECHO_PORT (an echo peer), REDIS_PORT.
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { createHash, randomBytes } from "node:crypto";
import { WS2S, Ws2sError, directSockets } from "../ws2s.js";

const url = process.env.WS2S_URL;
const shortGraceUrl = process.env.SHORT_GRACE_URL;
const echoPort = Number(process.env.ECHO_PORT);
const redisPort = Number(process.env.REDIS_PORT);
const skip = url ? false : "no live servers: run through `dotnet test` (JsClientTests starts ws2s, an echo peer and Redis)";

function withTimeout(promise, what, ms = 20000) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A promise and its resolve, for waiting on an event. */
function signal() {
  let resolve;
  const promise = new Promise((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * A TCP proxy on 127.0.0.1 to the ws2s server at `target`: `kill()` resets every connection through it and every
 * new one (as a dead proxy would) until `restart()`; `refused` counts the connections it reset while dead, and
 * `whenRefused()` waits for the next one.
 */
async function proxy(target) {
  const { hostname, port } = new URL(target);
  const live = new Set();
  let dead = false;
  let refusedWaiter = null;
  const server = net.createServer((client) => {
    if (dead) {
      client.resetAndDestroy();
      proxied.refused++;
      refusedWaiter?.resolve();
      return;
    }
    const upstream = net.connect(Number(port), hostname);
    const pair = [client, upstream];
    for (const socket of pair) {
      live.add(socket);
      socket.on("error", () => pair.forEach((s) => s.destroy()));
      socket.on("close", () => { live.delete(socket); pair.forEach((s) => s.destroy()); });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = new URL(target);
  address.host = `127.0.0.1:${server.address().port}`;
  const proxied = {
    url: address.toString(),
    refused: 0,
    kill() {
      dead = true;
      for (const socket of live) socket.resetAndDestroy();
      live.clear();
    },
    restart() { dead = false; },
    whenRefused() { refusedWaiter = signal(); return refusedWaiter.promise; },
    close() { this.kill(); server.close(); },
  };
  return proxied;
}

/**
 * Writes `payload` to an echo peer in 16 KiB writes, at most 256 KiB ahead of what came back (so what the WebSocket
 * carries at any moment stays well within what ws2s keeps for a resume), calling `at(received)` after each read.
 * Resolves with the SHA-256 and length of what came back once the peer closes (after `shutdown`), and the writes' answers.
 */
async function echoThrough(socket, payload, at) {
  const hash = createHash("sha256");
  let received = 0;
  let progress = signal();
  const reading = (async () => {
    for await (const chunk of socket) {
      hash.update(chunk);
      received += chunk.length;
      progress.resolve();
      at(received);
    }
  })();
  const answers = [];
  for (let offset = 0; offset < payload.length; offset += 16 * 1024) {
    while (offset - received > 256 * 1024) {
      progress = signal();
      await withTimeout(progress.promise, `echo past ${received} bytes`);
    }
    answers.push(socket.write(payload.subarray(offset, offset + 16 * 1024)));
  }
  return { answers: await withTimeout(Promise.all(answers), "every write answered"), received: () => received, hash, reading };
}

for (const binary of [true, false]) {
  test(`a resumable socket (${binary ? "binary" : "JSON"} mode) through a proxy reset twice, mid-transfer and right after shutdown, `
    + "sees one unbroken stream: the same bytes back, each once, and a resume event each time", { skip }, async () => {
    const through = await proxy(url);
    try {
      const socket = await new WS2S(through.url).connect({ host: "127.0.0.1", port: echoPort, binary, resumable: true });
      assert.equal(socket.resumable, true);
      const resumed = [];
      const lost = [];
      let resumedNow = signal();
      socket.onResuming = (why) => lost.push({ ...why, state: socket.state });
      socket.onResume = (info) => { resumed.push(info); resumedNow.resolve(); };
      // The proxy dies mid-transfer, refuses the first try to come back, then lets the next through.
      const comeBack = () => through.whenRefused().then(() => through.restart());
      const payload = randomBytes(binary ? 4 << 20 : 2 << 20);
      let killed = false;
      const transfer = await echoThrough(socket, payload, (received) => {
        if (!killed && received >= payload.length / 3) {
          killed = true;
          comeBack();
          through.kill();
        }
      });
      assert.ok(transfer.answers.every((answer) => answer === (binary ? "sent" : "sendb done")), String(new Set(transfer.answers)));
      await withTimeout(resumedNow.promise, "the first resume");
      assert.equal(socket.state, "open");
      // Again, with the shutdown's answer lost (or the shutdown itself): it is sent again, and answered once.
      resumedNow = signal();
      const shutdown = socket.shutdown();
      comeBack();
      through.kill();
      assert.equal(await withTimeout(shutdown, "shutdown answered"), "shutdown done");
      await withTimeout(transfer.reading, "the echo peer closes after the shutdown");
      assert.equal(transfer.received(), payload.length);
      assert.equal(transfer.hash.digest("hex"), createHash("sha256").update(payload).digest("hex"));
      assert.deepEqual(await socket.closed, { by: "peer", reason: "connection closed by peer" });
      assert.equal(resumed.length, 2, JSON.stringify(resumed));
      assert.deepEqual(lost.map((l) => [l.code, l.state]), [[1006, "resuming"], [1006, "resuming"]]);
      assert.ok(resumed.every((r) => r.attempts >= 2), JSON.stringify(resumed)); // the proxy refused one try each time
      assert.ok(resumed[0].received > 0 && resumed[0].taken > 0, JSON.stringify(resumed[0]));
      assert.ok(through.refused >= 2);
    } finally {
      through.close();
    }
  });
}

test("a Direct Sockets TCPSocket (resumable, acknowledging as the app reads) that reads slowly goes on through a proxy reset: "
  + "its streams see the same bytes back, each once", { skip }, async () => {
  const through = await proxy(url);
  try {
    const { TCPSocket } = directSockets(through.url, { transport: "ws2s" });
    const socket = new TCPSocket("127.0.0.1", echoPort);
    const { readable, writable } = await socket.opened;
    const payload = randomBytes(4 << 20);
    let killed = false;
    const comeBack = () => through.whenRefused().then(() => through.restart());
    const writing = (async () => {
      const writer = writable.getWriter();
      for (let offset = 0; offset < payload.length; offset += 64 * 1024) await writer.write(payload.subarray(offset, offset + 64 * 1024));
      await writer.close(); // FIN: the echo closes after it
    })();
    const hash = createHash("sha256");
    let received = 0;
    let chunks = 0;
    for await (const chunk of readable) {
      hash.update(chunk);
      received += chunk.length;
      if (!killed && received >= payload.length / 3) {
        killed = true;
        comeBack();
        through.kill();
      }
      // A slow reader: the server holds the echo back meanwhile (its window), and the writes wait for it in turn.
      if (++chunks % 16 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await withTimeout(writing, "every write taken");
    assert.ok(killed);
    assert.equal(received, payload.length);
    assert.equal(hash.digest("hex"), createHash("sha256").update(payload).digest("hex"));
    await withTimeout(socket.closed, "closed: both streams done");
    assert.ok(through.refused >= 1);
  } finally {
    through.close();
  }
});

test("an app that writes as fast as it may (no pacing of its own) through a resumable socket to an echo is held to the window, "
  + "and a reset mid-transfer loses nothing", { skip }, async () => {
  // Without the window the app's writes outrun the server's queue, the server's acks reader is held back behind them while
  // it waits for this socket's ack to read the echo peer on, and the transfer stalls.
  const through = await proxy(url);
  try {
    const socket = await new WS2S(through.url).connect({ host: "127.0.0.1", port: echoPort, binary: true, resumable: true });
    const resumed = signal();
    socket.onResume = resumed.resolve;
    const payload = randomBytes(16 << 20);
    const hash = createHash("sha256");
    let received = 0;
    let killed = false;
    const reading = (async () => {
      for await (const chunk of socket) {
        hash.update(chunk);
        received += chunk.length;
        if (!killed && received >= payload.length / 2) {
          killed = true;
          through.kill();
          through.restart();
        }
        if (received === payload.length) break;
      }
    })();
    for (let offset = 0; offset < payload.length; offset += 64 * 1024)
      await withTimeout(socket.write(payload.subarray(offset, offset + 64 * 1024)), `the write at ${offset}`);
    await withTimeout(reading, `the echo (${received} bytes back)`, 60000);
    await withTimeout(resumed.promise, "the resume");
    assert.equal(hash.digest("hex"), createHash("sha256").update(payload).digest("hex"));
    await socket.close();
  } finally {
    through.close();
  }
});

test("a resumable Redis connection reset mid-pipeline answers every command once, in order", { skip }, async () => {
  const through = await proxy(url);
  try {
    const ws2s = new WS2S(through.url);
    const redis = await ws2s.redis({ host: "127.0.0.1", port: redisPort, resumable: true });
    const key = `ws2s-resume-${Math.random().toString(36).slice(2)}`;
    const resumed = signal();
    redis.onResume = resumed.resolve;
    let killed = false;
    const replies = [];
    for (let i = 1; i <= 2000; i++) {
      replies.push(redis.command("INCR", key).then((n) => {
        if (!killed && n >= 500) {
          killed = true;
          through.kill();
          through.restart();
        }
        return n;
      }));
    }
    const values = await withTimeout(Promise.all(replies), "2000 INCR answered");
    await withTimeout(resumed.promise, "the resume");
    assert.deepEqual(values, Array.from({ length: 2000 }, (_, i) => i + 1)); // none lost, none run twice
    assert.equal(await redis.command("GET", key), "2000");
    await redis.command("DEL", key);
    await redis.close();
  } finally {
    through.close();
  }
});

test("a resumable Redis SUBSCRIBE through a drop hears every message published meanwhile, after the resume, in order, once", { skip }, async () => {
  const through = await proxy(url);
  try {
    const subscriber = await new WS2S(through.url).redis({ host: "127.0.0.1", port: redisPort, resumable: true });
    const publisher = await new WS2S(url).redis({ host: "127.0.0.1", port: redisPort });
    const channel = `ws2s-resume-${Math.random().toString(36).slice(2)}`;
    const heard = [];
    const all = signal();
    subscriber.onPush = (push) => {
      if (push.channel !== channel) return;
      heard.push(push.message);
      if (heard.length === 200) all.resolve();
    };
    const resumed = signal();
    subscriber.onResume = resumed.resolve;
    await subscriber.command("SUBSCRIBE", channel);
    for (let i = 1; i <= 100; i++) await publisher.command("PUBLISH", channel, `m${i}`);
    through.kill(); // the subscriber's WebSocket is gone, and every try to come back is refused until restart
    await through.whenRefused();
    // Redis still counts one subscriber: the session kept its connection while its client was away.
    for (let i = 101; i <= 200; i++) assert.equal(await publisher.command("PUBLISH", channel, `m${i}`), 1);
    through.restart();
    await withTimeout(resumed.promise, "the resume");
    await withTimeout(all.promise, `200 messages (${heard.length} heard)`);
    assert.deepEqual(heard, Array.from({ length: 200 }, (_, i) => `m${i + 1}`));
    await subscriber.close();
    await publisher.close();
  } finally {
    through.close();
  }
});

test("a resume the server refuses, after its grace ran out, ends the socket with code 9 in the server's words", { skip }, async () => {
  const through = await proxy(shortGraceUrl);
  // The peer is here, so the test sees ws2s end the session (and close the peer's connection) when the grace runs out.
  const peerGone = signal();
  const peer = net.createServer((connection) => {
    connection.on("data", (bytes) => connection.write(bytes));
    connection.on("error", () => {});
    connection.on("close", peerGone.resolve);
  });
  await new Promise((resolve) => peer.listen(0, "127.0.0.1", resolve));
  try {
    const socket = await new WS2S(through.url).connect({ host: "127.0.0.1", port: peer.address().port, resumable: { maxDelayMs: 500 } });
    await socket.write("before");
    assert.equal(new TextDecoder().decode(await socket.read()), "before");
    const reading = socket.read();
    through.kill();
    await withTimeout(peerGone.promise, "ws2s ends the session after its 1 s grace");
    through.restart();
    await assert.rejects(withTimeout(reading, "the resume refused"),
      (e) => e instanceof Ws2sError && e.code === 9 && e.message === "resume failed: no session holds this token");
    const why = await socket.closed;
    assert.equal(why.by, "network");
    assert.equal(why.error.code, 9);
    assert.equal(socket.state, "closed");
    await assert.rejects(socket.write("after"), (e) => e.code === 3);
  } finally {
    through.close();
    peer.close();
  }
});

test("a resumable socket that cannot reach the server again within timeoutMs ends as a lost connection, saying so", { skip }, async () => {
  const through = await proxy(url);
  try {
    const socket = await new WS2S(through.url).connect({ host: "127.0.0.1", port: echoPort, resumable: { timeoutMs: 1500, minDelayMs: 100 } });
    const reading = socket.read();
    through.kill();
    await assert.rejects(withTimeout(reading, "giving up"),
      (e) => e instanceof Ws2sError && e.code === 5 && /could not be resumed within 1.5 s \(\d+ attempts; the last: /.test(e.message));
    const why = await socket.closed;
    assert.equal(why.by, "network");
    assert.ok(through.refused >= 3, `tried ${through.refused} times`);
  } finally {
    through.close();
  }
});
