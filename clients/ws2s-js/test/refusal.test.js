// A refused WebSocket says why: the library asks the server (GET /.ws2s/admission, the token in a
// header) and puts its words in the error, or says what to check when it cannot ask. Against the
// servers the host's test suite starts: TOKEN_URL (tokens ["right-token"], one session per client),
// ORIGIN_URL (origins ["https://elsewhere.example"], no tokens), DEAD_URL (nothing listens); and
// servers of its own here, on loopback: one that is no ws2sd (404), one that answers 421.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import * as ws2sjs from "../ws2s.js";

const { WS2S } = ws2sjs;
const env = { tokenUrl: process.env.TOKEN_URL, originUrl: process.env.ORIGIN_URL, deadUrl: process.env.DEAD_URL };
const skip = env.tokenUrl ? false : "no live servers: run through `dotnet test` (JsClientTests starts them)";

function withTimeout(promise, what, ms = 15000) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The error connect() rejects with. */
async function refusal(ws2s) {
  try {
    await withTimeout(ws2s.connect({ host: "127.0.0.1", port: 9 }), "connect");
  } catch (error) {
    return error;
  }
  assert.fail("expected connect to reject");
}

/** The callback socket's calls: onError's argument and onClose, in order. */
function callbackCalls(ws2s) {
  return withTimeout(new Promise((resolve) => {
    const calls = [];
    const socket = ws2s.newSocket();
    socket.onReady = () => calls.push(["onReady"]);
    socket.onError = (error) => calls.push(["onError", error]);
    socket.onClose = () => { calls.push(["onClose"]); resolve(calls); };
  }), "onClose");
}

/** An HTTP server on loopback that refuses every WebSocket upgrade and answers GETs as `answer` says; it keeps what it was asked. */
async function fakeServer(upgradeStatus, answer) {
  const requests = [];
  const server = createServer((request, response) => {
    requests.push({ url: request.url, headers: request.headers });
    const [status, body] = answer(request);
    response.writeHead(status, { "Content-Type": "text/plain" }).end(body);
  });
  server.on("upgrade", (_request, socket) => socket.end(`HTTP/1.1 ${upgradeStatus} Refused\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`));
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `ws://127.0.0.1:${server.address().port}/`, requests, close: () => new Promise((resolve) => server.close(resolve)) };
}

test("a wrong token: connect rejects with the server's words and status, and what to do", { skip }, async () => {
  const error = await refusal(new WS2S(env.tokenUrl, { token: "wrong-token" }));
  assert.ok(error instanceof ws2sjs.Ws2sOpenError && error instanceof Error, `${error?.name}: ${error?.message}`);
  assert.equal(error.status, 401);
  assert.equal(error.refusal, "the token is not valid");
  assert.equal(error.url, env.tokenUrl);
  assert.equal(error.message,
    `cannot open ${env.tokenUrl}: the server refused: the token is not valid (HTTP 401); give the access token as new WS2S(url, { token })`);
});

test("no token where one is required: the server's words", { skip }, async () => {
  const error = await refusal(new WS2S(env.tokenUrl));
  assert.equal(error.status, 401);
  assert.equal(error.message,
    `cannot open ${env.tokenUrl}: the server refused: a token is required (?token=… or the subprotocol token.…) (HTTP 401); give the access token as new WS2S(url, { token })`);
});

test("the 2.1.4 callback socket: onError gets the error event, now with the server's words in message, then onClose", { skip }, async () => {
  const calls = await callbackCalls(new WS2S(env.tokenUrl, { token: "wrong-token" }));
  assert.deepEqual(calls.map(([name]) => name), ["onError", "onClose"]);
  const event = calls[0][1];
  assert.equal(event.type, "error"); // the WebSocket's error event, as 2.1.4 passed it
  assert.ok(event instanceof Event);
  assert.equal(event.message,
    `cannot open ${env.tokenUrl}: the server refused: the token is not valid (HTTP 401); give the access token as new WS2S(url, { token })`);
  assert.ok(event.error instanceof ws2sjs.Ws2sOpenError);
  assert.equal(event.error.status, 401);
});

test("no Origin header where the server admits only some pages: the server's words", { skip }, async () => {
  const error = await refusal(new WS2S(env.originUrl));
  assert.equal(error.status, 403);
  assert.equal(error.message,
    `cannot open ${env.originUrl}: the server refused: a request without an Origin header needs a token, or 'origins': ["*"] in the ws2s config (HTTP 403)`);
});

test("over the server's session limit: the server admits the token, so the error names the limits", { skip }, async () => {
  const ws2s = new WS2S(env.tokenUrl, { token: "right-token" });
  const held = ws2s.newSocket();
  await withTimeout(new Promise((resolve, reject) => { held.onReady = resolve; held.onError = reject; }), "the first session");
  try {
    const error = await refusal(ws2s);
    assert.equal(error.status, undefined);
    assert.match(error.message, new RegExp(`^cannot open ${env.tokenUrl}: the server admits this client's token and origin, so it was over a session limit`));
    assert.match(error.message, /limits\.maxSessionsPerClient/);
  } finally {
    held.close();
  }
});

test("nothing listening: asks whether ws2sd runs there", { skip }, async () => {
  const error = await refusal(new WS2S(env.deadUrl));
  const where = new URL(env.deadUrl).host;
  assert.equal(error.message, `cannot open ${env.deadUrl}: nothing answers at ${where} (ECONNREFUSED): is ws2sd running there, and is the address right?`);
});

test("a server that cannot say why (not ws2sd, or an older one): what to check", { skip }, async () => {
  const old = await fakeServer(400, () => [404, "not found"]);
  try {
    const error = await refusal(new WS2S(old.url, { token: "some-token" }));
    assert.equal(error.message,
      `cannot open ${old.url}: the server refused and did not say why (${old.url.replace("ws:", "http:")}.ws2s/admission answered HTTP 404: not ws2sd, or an older one): `
      + `is the address right, is the token right, and does the server admit clients that send no Origin (a token, or 'origins': ["*"])?`);
  } finally {
    await old.close();
  }
});

test("a 421 (the host name is not the server's): its words, and the token went in a header, never in the URL", { skip }, async () => {
  const words = "ws2s: this server does not answer to the host name 'rebound.example' (DNS rebinding protection); if it is this server's name, add it to 'allowedHosts' in the ws2s config\n";
  const misdirected = await fakeServer(421, () => [421, words]);
  try {
    const error = await refusal(new WS2S(misdirected.url, { token: "secret-token" }));
    assert.equal(error.status, 421);
    assert.equal(error.message,
      `cannot open ${misdirected.url}: the server refused: this server does not answer to the host name 'rebound.example' (DNS rebinding protection); if it is this server's name, add it to 'allowedHosts' in the ws2s config (HTTP 421)`);
    // (Node's fetch asks again once after a 421, as HTTP allows.)
    assert.ok(misdirected.requests.length >= 1);
    for (const { url, headers } of misdirected.requests) {
      assert.equal(url, "/.ws2s/admission");
      assert.equal(headers["x-ws2s-token"], "secret-token");
      assert.equal(headers["x-ws2s-origin"], undefined); // Node has no page origin to name
    }
  } finally {
    await misdirected.close();
  }
});
