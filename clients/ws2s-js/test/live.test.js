// The live suite under node --test, against the servers the host's test suite starts
// (WS2S_URL, ECHO_PORT, REDIS_PORT, REFUSED_PORT, TLS_REDIS_PORT, UDP_ECHO_PORT). Without them the tests are skipped, saying so.
import { test } from "node:test";
import assert from "node:assert/strict";
import { WS2S, Ws2sError, RedisError } from "../ws2s.js";
import { cases } from "./live-suite.js";

const env = {
  WS2S, Ws2sError, RedisError,
  url: process.env.WS2S_URL,
  echoPort: Number(process.env.ECHO_PORT),
  redisPort: Number(process.env.REDIS_PORT),
  refusedPort: Number(process.env.REFUSED_PORT),
  tlsRedisPort: Number(process.env.TLS_REDIS_PORT),
  udpEchoPort: Number(process.env.UDP_ECHO_PORT),
  options: {},
};
const skip = env.url ? false : "no live servers: run through `dotnet test` (JsClientTests starts ws2s, echo and Redis)";

for (const c of cases) test(c.name, { skip }, () => c.run(env, assert));
