// The resume bench's client, on Node's `ws` (a WebSocket client nobody here wrote). Prints JSON lines.
//
//   node resume.cjs --url ws://…/ --target HOST:PORT --work hold [--count N] [--resumable 1]
//     opens N sessions connected to the target (resumable or not), prints {"open":N}; on the stdin line "drop" ends
//     every WebSocket without a close frame (as a lost network does) and prints {"dropped":N}; exits when stdin ends.
//   node resume.cjs --url ws://…/ --target HOST:PORT --work latency [--count N]
//     N rounds, interleaved: (a) a fresh WebSocket's handshake and one ping answered; (b) the resumable session's
//     WebSocket dropped, a fresh one's handshake, and `resume` answered. Prints the medians and 90th percentiles in ms.
"use strict";
const { WebSocket, args, host, port } = require("./common.cjs");

function openSocket(url) {
  const ws = new WebSocket(url);
  const answers = [];
  const waiting = [];
  ws.on("message", (data, binary) => {
    if (binary) return;
    const answer = JSON.parse(data.toString());
    if (answer.code === -1) return;
    const next = waiting.shift();
    if (next) next(answer); else answers.push(answer);
  });
  const ask = (request) => new Promise((resolve) => {
    ws.send(JSON.stringify(request));
    waiting.push(resolve);
  });
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve({ ws, ask }));
    ws.once("error", reject);
  });
}

async function hold(count, resumable) {
  const sessions = [];
  for (let i = 0; i < count; i += 100)
    sessions.push(...await Promise.all(Array.from({ length: Math.min(100, count - i) }, async () => {
      const session = await openSocket(args.url);
      const answer = await session.ask({ command: "connect", host, port, resumable });
      if (answer.code !== 0) throw new Error(JSON.stringify(answer));
      return session;
    })));
  console.log(JSON.stringify({ open: sessions.length }));
  const lines = require("readline").createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line.trim() !== "drop") continue;
    for (const { ws } of sessions) ws.terminate(); // no close frame
    console.log(JSON.stringify({ dropped: sessions.length }));
  }
  return { closed: sessions.length };
}

const milliseconds = (start) => Number(process.hrtime.bigint() - start) / 1e6;
const percentile = (values, p) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))];

async function latency(count) {
  let session = await openSocket(args.url);
  const connected = await session.ask({ command: "connect", host, port, resumable: true });
  let token = connected.resume;
  const fresh = [];
  const resumed = [];
  for (let i = 0; i < count; i++) {
    let start = process.hrtime.bigint();
    const other = await openSocket(args.url);
    await other.ask({ command: "ping" });
    fresh.push(milliseconds(start));
    other.ws.close();

    session.ws.terminate();
    start = process.hrtime.bigint();
    const url = new URL(args.url);
    url.searchParams.set("instance", token.split(".")[0]);
    session = await openSocket(url.toString());
    const answer = await session.ask({ command: "resume", token, received: 0 });
    if (answer.message !== "resume done") throw new Error(JSON.stringify(answer));
    resumed.push(milliseconds(start));
    token = answer.resume;
    await session.ask({ command: "ping" }); // says something: the used token is retired
  }
  return { freshP50: percentile(fresh, 0.5), freshP90: percentile(fresh, 0.9), resumeP50: percentile(resumed, 0.5), resumeP90: percentile(resumed, 0.9) };
}

const work = { hold: () => hold(Number(args.count ?? 2000), args.resumable === "1"), latency: () => latency(Number(args.count ?? 200)) }[args.work];
work().then((result) => { console.log(JSON.stringify(result)); process.exit(0); },
  (error) => { console.error(`node resume client: ${error.stack ?? error}`); process.exit(1); });
