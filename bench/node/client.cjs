// The bench's second client, written on Node's `ws` (Debian's node-ws, or `npm install ws`), a WebSocket
// client nobody here wrote: the same workloads as the bench's own .NET client, so every figure is
// published from both. Prints one JSON line with the result.
//
//   node client.cjs --path tcp|json|binary|raw --target HOST:PORT [--url ws://…/] --work latency|throughput|connects|idle
//                   [--count N] [--size BYTES] [--seconds S] [--workers N]
//
// tcp: plain TCP to the target (the baseline). json: ws2s's protocol, connect then sendb / recv data.
// binary: ws2s's binary mode. raw: websockify's protocol (binary frames to the one target the URL names).
"use strict";
const net = require("net");
const { WebSocket, args, host, port } = require("./common.cjs");

/** A byte stream to the echo server: write(bytes), and onData(callback) for what comes back; close(). */
async function open() {
  if (args.path === "tcp") {
    const socket = net.connect({ host, port, noDelay: true });
    await new Promise((resolve, reject) => { socket.once("connect", resolve); socket.once("error", reject); });
    socket.setNoDelay(true);
    return {
      write: (bytes) => socket.write(bytes),
      drained: () => new Promise((resolve) => socket.once("drain", resolve)),
      onData: (callback) => socket.on("data", callback),
      close: () => new Promise((resolve) => { socket.once("close", resolve); socket.end(); }),
    };
  }
  const ws = new WebSocket(args.url, args.path === "raw" ? ["binary"] : [], { perMessageDeflate: false });
  await new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject); });
  ws._socket.setNoDelay(true);
  let deliver = () => {};
  if (args.path !== "raw") {
    const answer = new Promise((resolve, reject) => {
      ws.once("message", (data) => resolve(JSON.parse(data.toString())));
      ws.once("close", () => reject(new Error("closed before the connect answer")));
    });
    ws.send(JSON.stringify({ command: "connect", host, port, binary: args.path === "binary" }));
    const reply = await answer;
    if (reply.code !== 0) throw new Error(`connect failed: ${JSON.stringify(reply)}`);
  }
  ws.on("message", (data, isBinary) => {
    if (isBinary) return deliver(data);
    const message = JSON.parse(data.toString());
    if (message.code === -1) deliver(Buffer.from(message.data, "base64"));
    else if (message.code !== 0) throw new Error(`the bridge said ${data}`);
  });
  const json = args.path === "json";
  return {
    write: (bytes) => {
      ws.send(json ? `{"command":"sendb","data":"${bytes.toString("base64")}"}` : bytes, { binary: !json });
      return ws.bufferedAmount < (1 << 20);
    },
    drained: () => new Promise((resolve) => {
      const check = () => (ws.bufferedAmount < (1 << 20) ? resolve() : setImmediate(check));
      check();
    }),
    onData: (callback) => { deliver = callback; },
    close: () => new Promise((resolve) => { ws.once("close", resolve); ws.close(1000); }),
  };
}

/** Round trips of `size` bytes, one at a time: p50 and p99 in microseconds (the first tenth warms up). */
async function latency(count, size) {
  const stream = await open();
  const message = Buffer.alloc(size, 7);
  let got = 0;
  let arrived = () => {};
  stream.onData((bytes) => { got += bytes.length; if (got >= size) arrived(); });
  const samples = [];
  for (let i = -Math.floor(count / 10); i < count; i++) {
    got = 0;
    const done = new Promise((resolve) => { arrived = resolve; });
    const start = process.hrtime.bigint();
    stream.write(message);
    await done;
    if (i >= 0) samples.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  await stream.close();
  samples.sort((a, b) => a - b);
  return { p50: samples[Math.floor(count / 2)], p99: samples[Math.floor(count * 99 / 100)] };
}

/** One stream writing `size`-byte chunks flat out (at most 1 MiB not yet echoed) for `seconds`: echoed bytes per second. */
async function throughput(seconds, size) {
  const stream = await open();
  const chunk = Buffer.alloc(size, 3);
  let written = 0, echoed = 0;
  let wake = () => {};
  stream.onData((bytes) => { echoed += bytes.length; wake(); });
  const start = process.hrtime.bigint();
  const elapsed = () => Number(process.hrtime.bigint() - start) / 1e9;
  while (elapsed() < seconds) {
    if (written - echoed >= (1 << 20)) { await new Promise((resolve) => { wake = resolve; }); continue; }
    written += size;
    if (!stream.write(chunk)) await stream.drained();
  }
  while (echoed < written) await new Promise((resolve) => { wake = resolve; });
  const took = elapsed();
  await stream.close();
  return { bytesPerSecond: echoed / took, bytes: echoed };
}

/** Open, one 64-byte echo, close, `count` times over `workers` loops: cycles per second. */
async function connects(count, workers) {
  let remaining = count;
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: workers }, async () => {
    while (remaining-- > 0) {
      const stream = await open();
      let got = 0;
      await new Promise((resolve) => {
        stream.onData((bytes) => { got += bytes.length; if (got >= 64) resolve(); });
        stream.write(Buffer.alloc(64, 1));
      });
      await stream.close();
    }
  }));
  return { perSecond: count / (Number(process.hrtime.bigint() - start) / 1e9) };
}

/** Opens `count` sessions connected to the echo server, says "open" on stdout, and holds them until stdin ends. */
async function idle(count) {
  const streams = [];
  for (let i = 0; i < count; i += 100)
    streams.push(...await Promise.all(Array.from({ length: Math.min(100, count - i) }, open)));
  console.log(JSON.stringify({ open: streams.length }));
  await new Promise((resolve) => { process.stdin.on("end", resolve); process.stdin.resume(); });
  await Promise.all(streams.map((s) => s.close()));
  return { closed: streams.length };
}

const work = { latency: () => latency(Number(args.count ?? 5000), Number(args.size ?? 64)),
  throughput: () => throughput(Number(args.seconds ?? 5), Number(args.size ?? 16384)),
  connects: () => connects(Number(args.count ?? 3000), Number(args.workers ?? 8)),
  idle: () => idle(Number(args.count ?? 2000)) }[args.work];
work().then((result) => { console.log(JSON.stringify(result)); process.exit(0); },
  (error) => { console.error(`node client: ${error.stack ?? error}`); process.exit(1); });
