// A script written for ws2s.js 2.1.4, run under Node on the classic build (loaded as a page loads a
// classic script: into the global scope), against the servers the host's test suite starts
// (WS2S_URL, ECHO_PORT, REFUSED_PORT, REDIS_PORT, REDIS_PASSWORD): every callback must be called as
// 2.1.4 calls it (test/legacy-2.1.4.expected.json).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import vm from "node:vm";

const read = (file) => readFileSync(new URL(file, import.meta.url), "utf8");
const skip = process.env.WS2S_URL ? false : "no live servers: run through `dotnet test` (JsClientTests starts ws2s, echo and Redis)";

test("a script written for ws2s.js 2.1.4 gets every callback as 2.1.4 gives it, from the classic build", { skip }, async () => {
  vm.runInThisContext(read("../dist/ws2s.classic.js"), { filename: "ws2s.classic.js" });
  vm.runInThisContext(read("legacy-2.1.4.js"), { filename: "legacy-2.1.4.js" });
  const refusedPort = Number(process.env.REFUSED_PORT);
  let transcript;
  const finished = new Promise((resolve) => {
    transcript = globalThis.runLegacy({
      url: process.env.WS2S_URL, echoPort: Number(process.env.ECHO_PORT), refusedPort,
      redisPort: Number(process.env.REDIS_PORT), redisPassword: process.env.REDIS_PASSWORD,
      deadUrl: `ws://127.0.0.1:${refusedPort}/`,
    }, resolve);
  });
  let timer;
  const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve("timed out"), 60_000); });
  const outcome = await Promise.race([finished, timeout]);
  clearTimeout(timer);
  assert.deepEqual(transcript, JSON.parse(read("legacy-2.1.4.expected.json")), outcome === "timed out" ? "timed out: the transcript so far" : undefined);
});
