// The conversations with a real ws2s server (and real echo and Redis servers) that both runners
// use: node --test (test/live.test.js) and headless Chromium (the host's browser tests).
// env: { WS2S, Ws2sError, RedisError, url, echoPort, redisPort, refusedPort, tlsRedisPort, udpEchoPort, options }
// (udpEchoPort: a UDP echo; the server enables UDP)
// (tlsRedisPort: a Redis serving TLS only, its certificate for redis.test from a CA the server trusts)

const text = (bytes) => new TextDecoder().decode(bytes);

async function readExactly(socket, length) {
  const parts = [];
  let total = 0;
  while (total < length) {
    const chunk = await socket.read();
    if (chunk === null) throw new Error(`the peer closed after ${total} of ${length} bytes`);
    parts.push(chunk);
    total += chunk.length;
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const part of parts) { all.set(part, at); at += part.length; }
  return all;
}

function withTimeout(promise, what, ms = 15000) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const cases = [
  {
    name: "the ws2s.js 2.1.4 callback socket: onReady, connect, onOpen, send, onRecv, close, onClose",
    async run(env, assert) {
      const ws2s = new env.WS2S(env.url, env.options);
      const socket = ws2s.newSocket();
      const events = [];
      await withTimeout(new Promise((resolve, reject) => {
        socket.onReady = () => { events.push("ready"); socket.connect("127.0.0.1", env.echoPort); };
        socket.onOpen = () => { events.push("open"); socket.send("hello, "); socket.sendb(new TextEncoder().encode("bytes")); };
        let received = "";
        socket.onRecv = (data) => {
          assert.ok(data instanceof Uint8Array);
          received += text(data);
          if (received === "hello, bytes") { events.push("recv"); socket.close(); }
        };
        socket.onClose = () => { events.push("close"); resolve(); };
        socket.onError = reject;
      }), "callback socket");
      assert.deepEqual(events, ["ready", "open", "recv", "close"]);
    },
  },
  {
    name: "reconnect: a callback socket closed by the server reopens with backoff and is ready again",
    async run(env, assert) {
      const ws2s = new env.WS2S(env.url, { ...env.options, reconnect: { retries: 1, minDelayMs: 50 } });
      const socket = ws2s.newSocket();
      let ready = 0;
      let closes = 0;
      await withTimeout(new Promise((resolve) => {
        socket.onReady = () => {
          ready++;
          // Over the server's message limit (1 MiB): it closes the session with 1009.
          if (ready === 1) socket.send("x".repeat(1100 * 1024));
          else resolve();
        };
        socket.onClose = () => closes++;
      }), "reconnect");
      assert.equal(ready, 2);
      assert.equal(closes, 1);
      socket.close();
    },
  },
  {
    name: "promise API in JSON mode: write text and bytes, read them back",
    async run(env, assert) {
      const socket = await new env.WS2S(env.url, env.options).connect({ host: "127.0.0.1", port: env.echoPort });
      assert.equal(await socket.write("héllo"), "send done");
      assert.equal(text(await readExactly(socket, 6)), "héllo");
      assert.equal(await socket.write(new Uint8Array([0, 1, 255])), "sendb done");
      assert.deepEqual([...(await readExactly(socket, 3))], [0, 1, 255]);
      await socket.close();
    },
  },
  {
    name: "binary mode: 256 KiB out as binary frames and back, by async iteration",
    async run(env, assert) {
      const socket = await new env.WS2S(env.url, env.options).connect({ host: "127.0.0.1", port: env.echoPort, binary: true });
      const payload = new Uint8Array(256 * 1024).map((_, i) => (i * 31) & 0xff);
      await socket.write(payload);
      const back = new Uint8Array(payload.length);
      let at = 0;
      for await (const chunk of socket) {
        back.set(chunk, at);
        at += chunk.length;
        if (at === payload.length) break;
      }
      assert.deepEqual(back, payload);
      await socket.close();
    },
  },
  {
    name: "resumable: the server gives a token, and acknowledgements every 64 KiB stay out of the answers (JSON, binary, Redis)",
    async run(env, assert) {
      const ws2s = new env.WS2S(env.url, env.options);
      for (const binary of [false, true]) {
        const socket = await ws2s.connect({ host: "127.0.0.1", port: env.echoPort, binary, resumable: true });
        assert.equal(socket.resumable, true);
        const payload = new Uint8Array(300 * 1024).map((_, i) => (i * 13) & 0xff);
        const answers = [];
        for (let at = 0; at < payload.length; at += 10 * 1024) answers.push(socket.write(payload.subarray(at, at + 10 * 1024)));
        answers.push(socket.write("and text"));
        assert.deepEqual(await readExactly(socket, payload.length + 8), new Uint8Array([...payload, ...new TextEncoder().encode("and text")]));
        assert.deepEqual([...new Set(await Promise.all(answers))], binary ? ["sent", "send done"] : ["sendb done", "send done"]);
        assert.equal(await socket.shutdown(), "shutdown done");
        assert.equal(await socket.read(), null);
        assert.equal(socket.state, "closed");
      }
      const plain = await ws2s.connect({ host: "127.0.0.1", port: env.echoPort });
      assert.equal(plain.resumable, false);
      await plain.close();
      const redis = await ws2s.redis({ host: "127.0.0.1", port: env.redisPort, resumable: true });
      const key = `ws2s-${Math.random().toString(36).slice(2)}`;
      const big = "r".repeat(150_000);
      assert.equal(await redis.command("SET", key, big), "OK");
      assert.equal(await redis.command("GET", key), big);
      assert.equal(await redis.command("DEL", key), 1);
      await redis.close();
    },
  },
  {
    name: "half-close: shutdown, then read until the peer closes",
    async run(env, assert) {
      const socket = await new env.WS2S(env.url, env.options).connect({ host: "127.0.0.1", port: env.echoPort });
      await socket.write("request");
      assert.equal(await socket.shutdown(), "shutdown done");
      let all = "";
      for await (const chunk of socket) all += text(chunk);
      assert.equal(all, "request");
      await assert.rejects(socket.write("too late"), (e) => e.code === 3);
    },
  },
  {
    name: "errors are typed and carry the server's code",
    async run(env, assert) {
      const ws2s = new env.WS2S(env.url, env.options);
      await assert.rejects(ws2s.connect({ host: "127.0.0.1", port: env.refusedPort }),
        (e) => e instanceof env.Ws2sError && e.code === 2 && e.message === "connection refused");
      await assert.rejects(ws2s.connect({ host: "no-such-host.invalid", port: 80 }),
        (e) => e.code === 2 && e.message === "host not found: no-such-host.invalid");
      await assert.rejects(ws2s.connect({ host: "127.0.0.1", port: 0 }),
        (e) => e.code === 7 && e.message === "bad request: port must be an integer 1-65535");
    },
  },
  {
    name: "Redis over TLS (tls: true): SET and GET, and a wrong server name refused with code 8",
    async run(env, assert) {
      const ws2s = new env.WS2S(env.url, env.options);
      const redis = await ws2s.redis({ host: "127.0.0.1", port: env.tlsRedisPort, tls: true, tlsServerName: "redis.test" });
      assert.equal(await redis.command("SET", "ws2s-tls", "secret"), "OK");
      assert.equal(await redis.command("GET", "ws2s-tls"), "secret");
      await redis.close();
      await assert.rejects(ws2s.redis({ host: "127.0.0.1", port: env.tlsRedisPort, tls: true, tlsServerName: "bank.test" }),
        (e) => e instanceof env.Ws2sError && e.code === 8 && e.message === "tls failed: certificate name does not match bank.test");
      // The 2.1.4 callback socket, with the options argument after its eight.
      const socket = ws2s.newSocket();
      const pong = await new Promise((resolve, reject) => {
        socket.onError = reject;
        socket.onReady = () => socket.connect("127.0.0.1", env.tlsRedisPort, undefined, undefined, undefined, undefined, undefined, undefined,
          { tls: true, tlsServerName: "redis.test" });
        socket.onOpen = () => socket.send("PING\r\n");
        socket.onRecv = (bytes) => resolve(new TextDecoder().decode(bytes));
      });
      socket.close();
      assert.equal(pong, "+PONG\r\n");
    },
  },
  {
    name: "Redis pub/sub: messages go to onPush, never as another command's reply; PING still answered",
    async run(env, assert) {
      const ws2s = new env.WS2S(env.url, env.options);
      const subscriber = await ws2s.redis({ host: "127.0.0.1", port: env.redisPort });
      const publisher = await ws2s.redis({ host: "127.0.0.1", port: env.redisPort });
      const channel = `ws2s-${Math.random().toString(36).slice(2)}`;
      const messages = [];
      subscriber.onPush = (push) => messages.push(push);
      assert.deepEqual(await subscriber.command("SUBSCRIBE", channel, `${channel}-2`), ["subscribe", `${channel}-2`, 2]);
      assert.equal(await publisher.command("PUBLISH", channel, "one"), 1);
      assert.equal(await publisher.command("PUBLISH", `${channel}-2`, "two"), 1);
      assert.deepEqual(await subscriber.command("PING"), ["pong", ""]); // RESP2's PING while subscribed
      assert.deepEqual(messages, [{ kind: "message", channel, message: "one" }, { kind: "message", channel: `${channel}-2`, message: "two" }]);
      await subscriber.command("PSUBSCRIBE", `${channel}*`);
      await publisher.command("PUBLISH", `${channel}-3`, "three");
      await subscriber.command("PING");
      assert.deepEqual(messages.at(-1), { kind: "pmessage", pattern: `${channel}*`, channel: `${channel}-3`, message: "three" });
      await subscriber.command("UNSUBSCRIBE");
      await subscriber.command("PUNSUBSCRIBE");
      assert.equal(await subscriber.command("PING"), "PONG");
      await subscriber.close();
      await publisher.close();
    },
  },
  {
    name: "Redis MONITOR lines and RESP3 (HELLO 3): maps, sets, doubles, pushes, and integers past 2^53 exact",
    async run(env, assert) {
      const ws2s = new env.WS2S(env.url, env.options);
      const watcher = await ws2s.redis({ host: "127.0.0.1", port: env.redisPort });
      const lines = [];
      watcher.onPush = (push) => push.kind === "monitor" && lines.push(push.line);
      assert.equal(await watcher.command("MONITOR"), "OK");
      const redis = await ws2s.redis({ host: "127.0.0.1", port: env.redisPort });
      const key = `ws2s-${Math.random().toString(36).slice(2)}`;
      await redis.command("SET", key, "9007199254740993");
      assert.equal(await redis.command("INCR", key), 9007199254740994n);
      assert.ok(lines.some((line) => line.includes('"SET"') && line.includes(key)), lines.join("\n"));
      const hello = await redis.command("HELLO", "3");
      assert.ok(hello instanceof Map && hello.get("proto") === 3);
      await redis.command("HSET", `${key}-h`, "f", "v");
      const hash = await redis.command("HGETALL", `${key}-h`);
      assert.ok(hash instanceof Map && hash.get("f") === "v");
      await redis.command("SADD", `${key}-s`, "a");
      const set = await redis.command("SMEMBERS", `${key}-s`);
      assert.ok(set instanceof Set && set.has("a"));
      assert.equal(await redis.command("INCRBYFLOAT", `${key}-f`, "1.5"), "1.5"); // a bulk string in RESP3 too
      const pushes = [];
      redis.onPush = (push) => pushes.push(push);
      await redis.command("SUBSCRIBE", `${key}-c`);
      const other = await ws2s.redis({ host: "127.0.0.1", port: env.redisPort });
      await other.command("PUBLISH", `${key}-c`, "over resp3");
      assert.equal(await redis.command("PING"), "PONG"); // RESP3 answers PING normally while subscribed
      assert.deepEqual(pushes, [{ kind: "message", channel: `${key}-c`, message: "over resp3" }]);
      await other.command("DEL", key, `${key}-h`, `${key}-s`, `${key}-f`);
      for (const connection of [redis, other, watcher]) await connection.close();
    },
  },
  {
    name: "Redis AUTH with an ACL username; a refused AUTH rejects with Redis's words",
    async run(env, assert) {
      const ws2s = new env.WS2S(env.url, env.options);
      const admin = await ws2s.redis({ host: "127.0.0.1", port: env.redisPort });
      const user = `ws2s-${Math.random().toString(36).slice(2)}`;
      assert.equal(await admin.command("ACL", "SETUSER", user, "on", ">secret-pass", "~*", "+@all"), "OK");
      const alice = await ws2s.redis({ host: "127.0.0.1", port: env.redisPort, username: user, password: "secret-pass" });
      assert.equal(await alice.command("ACL", "WHOAMI"), user);
      await alice.close();
      await assert.rejects(ws2s.redis({ host: "127.0.0.1", port: env.redisPort, username: user, password: "wrong" }),
        (e) => e instanceof env.RedisError && e.message.startsWith("WRONGPASS"));
      await admin.command("ACL", "DELUSER", user);
      await admin.close();
    },
  },
  {
    name: "Redis reconnects by itself when asked to, back in the db it had SELECTed; close() is final",
    async run(env, assert) {
      const ws2s = new env.WS2S(env.url, env.options);
      const redis = await ws2s.redis({ host: "127.0.0.1", port: env.redisPort, reconnect: { retries: 10, minDelayMs: 50, maxDelayMs: 400 } });
      const key = `ws2s-${Math.random().toString(36).slice(2)}`;
      assert.equal(await redis.command("SELECT", "3"), "OK");
      assert.equal(await redis.command("SET", key, "in db 3"), "OK");
      const id = await redis.command("CLIENT", "ID");
      const back = new Promise((resolve) => (redis.onReconnect = resolve));
      const admin = await ws2s.redis({ host: "127.0.0.1", port: env.redisPort });
      assert.equal(await admin.command("CLIENT", "KILL", "ID", String(id)), 1);
      await back;
      assert.equal(redis.state, "open");
      assert.equal(await redis.command("GET", key), "in db 3");
      assert.ok((await redis.command("CLIENT", "ID")) !== id, "a new Redis client");
      await redis.command("DEL", key);
      await redis.close();
      assert.deepEqual(await redis.closed, { by: "you" });
      await admin.close();
    },
  },
  {
    name: "Binary values round-trip: bytes that are not UTF-8 come back as the same bytes",
    async run(env, assert) {
      const redis = await new env.WS2S(env.url, env.options).redis({ host: "127.0.0.1", port: env.redisPort });
      const key = `ws2s-${Math.random().toString(36).slice(2)}`;
      const bytes = new Uint8Array([0xff, 0x00, 0x61, 0xc3]);
      assert.equal(await redis.command("SET", key, bytes), "OK");
      assert.deepEqual(await redis.command("GET", key), bytes);
      assert.deepEqual(await redis.request(`SET ${key} "\\xff\\x00a\\xc3"`), "OK");
      assert.deepEqual(await redis.command("GET", key), bytes);
      await redis.command("DEL", key);
      await redis.close();
    },
  },
  {
    name: "A connection says why it ended: the peer (QUIT), or you",
    async run(env, assert) {
      const ws2s = new env.WS2S(env.url, env.options);
      const redis = await ws2s.redis({ host: "127.0.0.1", port: env.redisPort });
      assert.equal(redis.state, "open");
      assert.equal(await redis.command("QUIT"), "OK");
      const why = await redis.closed;
      assert.equal(why.by, "peer");
      assert.equal(redis.state, "closed");
      const mine = await ws2s.redis({ host: "127.0.0.1", port: env.redisPort });
      await mine.close();
      assert.deepEqual(await mine.closed, { by: "you" });
    },
  },
  {
    name: "Redis through the promise API: strings, integers, lists, hashes, nil and errors",
    async run(env, assert) {
      const redis = await new env.WS2S(env.url, env.options).redis({ host: "127.0.0.1", port: env.redisPort });
      const key = `ws2s-test-${Math.random().toString(36).slice(2)}`;
      assert.equal(await redis.command("SET", key, "héllo wörld"), "OK");
      assert.equal(await redis.request(`GET ${key}`), "héllo wörld");
      assert.equal(await redis.command("GET", `${key}-missing`), null);
      assert.equal(await redis.command("INCR", `${key}-n`), 1);
      assert.equal(await redis.command("INCRBY", `${key}-n`, 41), 42);
      assert.equal(await redis.command("LPUSH", `${key}-l`, "a", "b", "c"), 3);
      assert.deepEqual(await redis.request(`LRANGE ${key}-l 0 -1`), ["c", "b", "a"]);
      await redis.command("HSET", `${key}-h`, "f1", "v1", "f2", "v2");
      assert.deepEqual(await redis.command("HGETALL", `${key}-h`), ["f1", "v1", "f2", "v2"]);
      await assert.rejects(redis.command("INCR", key), (e) => e instanceof env.RedisError && e.message.startsWith("ERR"));
      const big = "x".repeat(200_000); // a reply spanning many reads and messages
      await redis.command("SET", `${key}-big`, big);
      assert.equal((await redis.command("GET", `${key}-big`)).length, big.length);
      await redis.command("DEL", key, `${key}-n`, `${key}-l`, `${key}-h`, `${key}-big`);
      await redis.close();
    },
  },
  {
    name: "the ws2s.js 2.1.4 Redis client: newRedisCient, request, onResponse, onError",
    async run(env, assert) {
      const client = new env.WS2S(env.url, env.options).newRedisCient("127.0.0.1", env.redisPort);
      const replies = [];
      const errors = [];
      await withTimeout(new Promise((resolve) => {
        client.onReady = () => client.request("set ws2s-legacy \"two words\"\nget ws2s-legacy\nincr ws2s-legacy");
        client.onResponse = (reply) => replies.push(reply);
        client.onError = (error) => { errors.push(error); resolve(); };
      }), "legacy redis client");
      client.close();
      assert.deepEqual(replies, ["OK", "two words"]);
      assert.equal(errors.length, 1);
      assert.match(String(errors[0]), /ERR/);
    },
  },
  {
    name: "wisp: twenty sockets over one WebSocket, each gets exactly its own bytes back",
    async run(env, assert) {
      const wisp = await withTimeout(new env.WS2S(env.url, env.options).wisp(), "wisp session");
      const sockets = await Promise.all(Array.from({ length: 20 }, () => wisp.connect({ host: "127.0.0.1", port: env.echoPort })));
      await withTimeout(Promise.all(sockets.map(async (socket, i) => {
        const sent = new Uint8Array(40_000 + i);
        for (let k = 0; k < sent.length; k++) sent[k] = (k * 7 + i) & 0xff;
        for (let at = 0; at < sent.length; at += 4096) await socket.write(sent.subarray(at, at + 4096));
        assert.deepEqual(await readExactly(socket, sent.length), sent);
        await socket.close();
        assert.deepEqual(await socket.closed, { by: "you" });
      })), "twenty echoes");
      wisp.close();
    },
  },
  {
    name: "wisp: a socket the peer refuses rejects with code 2 in words; the session goes on",
    async run(env, assert) {
      const wisp = await withTimeout(new env.WS2S(env.url, env.options).wisp(), "wisp session");
      await assert.rejects(wisp.connect({ host: "127.0.0.1", port: env.refusedPort }),
        (e) => e instanceof env.Ws2sError && e.code === 2 && /connection refused \(wisp 0x44\)/.test(e.message));
      const socket = await wisp.connect({ host: "127.0.0.1", port: env.echoPort });
      await socket.write("still here");
      assert.equal(text(await readExactly(socket, 10)), "still here");
      wisp.close();
      assert.equal((await wisp.closed).by, "you");
    },
  },
  {
    name: "UDP: each write is one datagram and each read one datagram, over ws2s and over Wisp",
    async run(env, assert) {
      const ws2s = new env.WS2S(env.url, env.options);
      const direct = await ws2s.connect({ host: "127.0.0.1", port: env.udpEchoPort, udp: true, binary: true });
      for (const size of [1, 1400, 60000]) {
        const datagram = new Uint8Array(size).fill(size & 0xff);
        await direct.write(datagram);
        assert.deepEqual(await withTimeout(direct.read(), `a ${size}-byte datagram`), datagram);
      }
      await direct.close();
      const wisp = await ws2s.wisp();
      assert.equal(wisp.udp, true);
      const socket = await wisp.connect({ host: "127.0.0.1", port: env.udpEchoPort, udp: true });
      await socket.write("one datagram");
      assert.equal(text(await withTimeout(socket.read(), "a datagram over Wisp")), "one datagram");
      wisp.close();
    },
  },
];
