// The Direct Sockets suite under node --test, over ws2s binary mode and over Wisp, against the servers the host's test
// suite starts (WS2S_URL, ECHO_PORT, GREETER_PORT, UDP_ECHO_PORT, REFUSED_PORT, DENIED_PORT, REDIS_PORT, SOURCE_PORT, SINK_PORT,
// PIPE_BYTES). Without them the tests are skipped, saying so.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { directSockets } from "../ws2s.js";
import { cases, pipeCase } from "./direct-sockets-suite.js";

const base = {
  directSockets,
  url: process.env.WS2S_URL,
  options: {},
  explainer: readFileSync(new URL("./wicg/explainer.md", import.meta.url), "utf8"),
  echoPort: Number(process.env.ECHO_PORT),
  greeterPort: Number(process.env.GREETER_PORT),
  udpEchoPort: Number(process.env.UDP_ECHO_PORT),
  refusedPort: Number(process.env.REFUSED_PORT),
  deniedPort: Number(process.env.DENIED_PORT),
  redisPort: Number(process.env.REDIS_PORT),
  sourcePort: Number(process.env.SOURCE_PORT),
  sinkPort: Number(process.env.SINK_PORT),
  pipeBytes: Number(process.env.PIPE_BYTES),
  report: (line) => console.log(`# ${line}`),
};
const skip = base.url ? false : "no live servers: run through `dotnet test` (JsClientTests starts ws2s and the peers)";

test("auto chooses Wisp when the server offers it, ws2s when told to", { skip }, async () => {
  assert.equal(await directSockets(base.url).transport, "wisp");
  assert.equal(await directSockets(base.url, { transport: "ws2s" }).transport, "ws2s");
  assert.throws(() => directSockets(base.url, { transport: "carrier pigeon" }), TypeError);
  assert.throws(() => directSockets(base.url, { transport: "native" }), { name: "NotSupportedError" });
});
test("the browser's own classes are taken where they exist (auto or native), never this library's own installed as globals", async () => {
  class TCPSocket {}
  class UDPSocket {}
  Object.assign(globalThis, { TCPSocket, UDPSocket });
  try {
    const native = directSockets("ws://127.0.0.1:1/");
    assert.equal(native.TCPSocket, TCPSocket);
    assert.equal(native.UDPSocket, UDPSocket);
    assert.equal(await native.transport, "native");
    assert.equal(directSockets("ws://127.0.0.1:1/", { transport: "native" }).TCPSocket, TCPSocket);
    assert.notEqual(directSockets("ws://127.0.0.1:1/", { transport: "ws2s" }).TCPSocket, TCPSocket);
    // A page that installs the bridged classes as the globals (as the Redis case does) still gets a bridge.
    globalThis.TCPSocket = directSockets("ws://127.0.0.1:1/", { transport: "ws2s" }).TCPSocket;
    assert.notEqual(directSockets("ws://127.0.0.1:1/", { transport: "ws2s" }).TCPSocket, globalThis.TCPSocket);
    assert.equal(await directSockets("ws://127.0.0.1:1/", { transport: "wisp" }).transport, "wisp");
    assert.throws(() => directSockets("ws://127.0.0.1:1/", { transport: "native" }), { name: "NotSupportedError" });
  } finally {
    delete globalThis.TCPSocket;
    delete globalThis.UDPSocket;
  }
});
for (const transport of ["ws2s", "wisp"])
  for (const c of cases) test(`${transport}: ${c.name}`, { skip }, () => c.run({ ...base, transport }, assert));
test("ws2s's own additions: tls (done and checked by the server) and startTls() after the protocol's STARTTLS", { skip }, async () => {
  const { TCPSocket } = directSockets(base.url, { transport: "ws2s" });
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  const line = async (reader) => decoder.decode((await reader.read()).value);

  const secure = new TCPSocket("127.0.0.1", Number(process.env.TLS_ECHO_PORT), { tls: true, tlsServerName: "redis.test" });
  const tls = await secure.opened;
  const secureWriter = tls.writable.getWriter();
  const secureReader = tls.readable.getReader();
  await secureWriter.write(encoder.encode("over TLS\n"));
  assert.equal(await line(secureReader), "over TLS\n");
  secureWriter.releaseLock();
  secureReader.releaseLock();
  await secure.close();

  // RFC 3207's order: the greeting, the protocol's STARTTLS, its go-ahead, then the handshake; what follows goes over TLS.
  const upgraded = new TCPSocket("127.0.0.1", Number(process.env.STARTTLS_PORT), { resumable: false });
  const plain = await upgraded.opened;
  const writer = plain.writable.getWriter();
  const reader = plain.readable.getReader();
  assert.equal(await line(reader), "220 ready\r\n");
  await writer.write(encoder.encode("STARTTLS\r\n"));
  assert.equal(await line(reader), "220 go ahead\r\n");
  await upgraded.startTls("redis.test");
  await writer.write(encoder.encode("EHLO secret\r\n"));
  assert.equal(await line(reader), "250 EHLO secret\r\n");
  writer.releaseLock();
  reader.releaseLock();
  await upgraded.close();

  // A resumable socket (the default) cannot: the server says why (its code 7).
  const resumable = new TCPSocket("127.0.0.1", Number(process.env.STARTTLS_PORT));
  await resumable.opened;
  const refused = await upgradedRefusal(resumable.startTls("redis.test"));
  assert.equal(refused.cause?.code, 7, refused.message);
  await resumable.close();
  // Over Wisp there is no tls: opened rejects with a TypeError that says so.
  const { TCPSocket: OverWisp } = directSockets(base.url, { transport: "wisp" });
  await assert.rejects(new OverWisp("127.0.0.1", Number(process.env.TLS_ECHO_PORT), { tls: true }).opened, TypeError);
});

async function upgradedRefusal(promise) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("startTls() on a resumable socket succeeded");
}

test(pipeCase.name, { skip }, () => pipeCase.run({ ...base, transport: "ws2s" }, assert));
