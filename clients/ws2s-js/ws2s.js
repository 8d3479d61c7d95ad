// ws2s.js 3: the browser (and Node >= 20) client for ws2s, a WebSocket server that gives
// JavaScript real TCP sockets. Drop-in for ws2s.js 2.1.4 (new WS2S(url).newSocket(),
// newRedisCient), plus a promise API, binary mode, typed errors and reconnection.

import { RespParser, RespPush, RedisError, encodeCommand, encodeCommandBytes, splitCommandLine } from "./resp.js";
import { Ws2sError, Ws2sOpenError } from "./errors.js";
import { WispSession, WispSocket } from "./wisp.js";

export { RespParser, RespPush, RedisError, encodeCommand, encodeCommandBytes, splitCommandLine, Ws2sError, Ws2sOpenError, WispSession, WispSocket };
export { directSockets } from "./direct-sockets.js";

const PING_INTERVAL_MS = 50 * 1000;
const encoder = new TextEncoder();

function toBase64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function fromBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

const ADMISSION_TIMEOUT_MS = 5000;

/**
 * @internal How to ask the server at `url` about admission (/.ws2s/admission, http for ws, https for wss): the token in a
 * header (never in the URL), and from a page of the server's own origin the page's origin (a browser sends Origin itself
 * to another origin only). `fetch` it with `redirect: "error"`: the token goes to this server only.
 */
export function admissionQuestion(url, token) {
  const question = new URL("/.ws2s/admission", url.replace(/^ws(s?):/i, "http$1:"));
  const page = globalThis.location?.origin;
  const inPage = typeof page === "string" && page !== "null";
  const headers = {};
  if (token) headers["X-Ws2s-Token"] = token;
  if (inPage && page === question.origin) headers["X-Ws2s-Origin"] = page;
  return { question, headers, page, inPage };
}

/**
 * Why the WebSocket to `url` did not open, asked of the server at /.ws2s/admission (http for ws, https for
 * wss), with the token in a header (never in the URL) and, from a page of the server's own origin, the
 * page's origin (a browser sends Origin itself to another origin). Resolves to a Ws2sOpenError, never rejects.
 */
async function whyNotOpen(url, { token, fetch: fetchImpl = globalThis.fetch } = {}) {
  const cannot = `cannot open ${url}`;
  const { question, headers, page, inPage } = admissionQuestion(url, token);
  const checks = inPage
    ? `is the token right, and is this page's origin ${page} in the server's 'origins'?`
    : `is the token right, and does the server admit clients that send no Origin (a token, or 'origins': ["*"])?`;
  const refused = (status, words) => new Ws2sOpenError(url,
    `${cannot}: the server refused: ${words} (HTTP ${status})${status === 401 ? "; give the access token as new WS2S(url, { token })" : ""}`,
    status, words);
  if (typeof fetchImpl !== "function")
    return new Ws2sOpenError(url, `${cannot} (and there is no fetch here to ask the server why): is ws2sd running at ${question.host}, ${checks}`);
  let response;
  let body;
  try {
    // Never followed elsewhere: the token goes to this server only.
    response = await fetchImpl(question, { headers, cache: "no-store", redirect: "error", signal: AbortSignal.timeout?.(ADMISSION_TIMEOUT_MS) });
    body = await response.text();
  } catch (error) {
    if (error?.cause?.code === "ECONNREFUSED")
      return new Ws2sOpenError(url, `${cannot}: nothing answers at ${question.host} (ECONNREFUSED): is ws2sd running there, and is the address right?`);
    // A browser does not say why a fetch failed: nothing there, or a server that does not let this page read its answer (CORS).
    const cause = typeof error?.cause?.code === "string" ? ` (${error.cause.code})` : "";
    const failure = error?.name === "TimeoutError" ? `no answer within ${ADMISSION_TIMEOUT_MS / 1000} s` : `${error?.name ?? "Error"}: ${error?.message ?? error}${cause}`;
    return new Ws2sOpenError(url, `${cannot}, and the server could not be asked why (${question} failed: ${failure}): is ws2sd running at ${question.host}, ${checks}`);
  }
  let answer = null;
  try {
    answer = JSON.parse(body);
  } catch { /* not ws2s's answer */ }
  if (response.ok && typeof answer?.status === "number") {
    if (answer.status !== 200) return refused(answer.status, String(answer.refusal));
    return new Ws2sOpenError(url, `${cannot}: the server admits this client's token and origin, so it was over a session limit `
      + "(HTTP 503: limits.maxSessions or limits.maxSessionsPerClient in the ws2s config, or a signed token's maxSessions), or the connection failed; try again later");
  }
  // Refusals that come before any endpoint: a host name the server does not answer to (421), too many questions (429).
  const words = body.startsWith("ws2s: ") ? body.slice("ws2s: ".length).trim() : null;
  if (response.status === 421 && words) return refused(421, words);
  if (response.status === 429) return new Ws2sOpenError(url, `${cannot}: the server refused, and was asked why too often just now (HTTP 429): try again in a second`);
  return new Ws2sOpenError(url, `${cannot}: the server refused and did not say why (${question} answered HTTP ${response.status}: not ws2sd, or an older one): is the address right, ${checks}`);
}

/** An IP address as a destination rule writes it with a port: IPv6 in brackets. */
const ruleAddress = (address) => (address.includes(":") ? `[${address.replace(/^\[|\]$/g, "")}]` : address);
const isIPv4 = (host) => /^\d{1,3}(\.\d{1,3}){3}$/.test(host);
const isIPv6 = (host) => /^\[?[0-9a-f:.]*:[0-9a-f:.]*\]?$/i.test(host);

/**
 * What would allow a destination that ws2s refused with code 4, from its words (spec/protocol.md:
 * `ws2s refuse to connect target host: H, cause that's a dangerous operation (RULE)`): the config keys
 * to change, in a sentence, or null when the words say what to do already (or are not a code 4's).
 * @param {string} message the code 4 message
 * @param {number} [port] the port asked for, to write the rule (PORT without it)
 */
export function refusalHint(message, port) {
  const words = /^ws2s refuse to connect target host: (.*), cause that's a dangerous operation \((.*)\)$/s.exec(String(message));
  if (!words) return null;
  const [, host, rule] = words;
  const at = port ?? "PORT";
  const destination = `${ruleAddress(host)}:${at}`;
  const onlyThat = "once destinations.allow has a rule, only what it allows is reachable";
  // This machine (Policy.serverLocalRanges, or one of its interfaces' addresses): the switch, or an address rule.
  const local = {
    "loopback 127.0.0.0/8": isIPv4(host) ? host : "127.0.0.1",
    "this host 0.0.0.0/8": isIPv4(host) ? host : "0.0.0.0",
    "loopback ::1": "::1",
    "unspecified ::": "::",
  }[rule] ?? /^this machine's address (\S+)$/.exec(rule)?.[1];
  if (local)
    return `To allow it: "allowConnectToServerLocal": true in the ws2s config (every port of this machine but ws2s's own), or "${ruleAddress(local)}:${at}" in destinations.allow (only that; ${onlyThat}).`;
  const deny = /^deny rule (.*)$/.exec(rule);
  if (deny) return `destinations.deny in the ws2s config has the rule "${deny[1]}", which refuses it whatever allows it: take it out (or narrow it) to allow this destination.`;
  if (rule === "the ws2s server itself") return "Nothing allows it: a session may not connect to the ws2s server's own ports.";
  if (rule === "not in the allow list") return `To allow it: "${destination}" in destinations.allow in the ws2s config.`;
  if (rule === "not in ssh.allowTargets") return `To allow it: "${destination}" in ssh.allowTargets in the ws2s config.`;
  if (rule === "not in this session's scope")
    return `This session may reach only what its signed token's ws2s.allow claim (or the app that embeds ws2s) allows, and ${host}:${at} is not in it.`;
  if (rule === "SSH tunnels are not in this session's scope") return `The session's signed token says "ssh": false: SSH tunnels need a token that allows them.`;
  if (rule.startsWith("tls.required ")) return `The ws2s config's tls.required lists it: connect with TLS ("tls": true), or take the rule out of tls.required.`;
  if (rule.startsWith("the session's token expired")) return null;
  // A special-purpose range (Policy.specialRanges: "private network 10.0.0.0/8", …): only an address rule opens it.
  const range = /\s([0-9a-f]*[.:][0-9a-f.:]*)(\/\d+)?$/i.exec(rule);
  if (range) {
    if (isIPv4(host) || isIPv6(host)) return `To allow it: "${destination}" in destinations.allow in the ws2s config (${onlyThat}).`;
    const [, address, length = ""] = range;
    return `To allow it: the address ${host} resolves to, with the port, in destinations.allow in the ws2s config (e.g. "${ruleAddress(address)}${length}:${at}"${length ? ` for all of ${address}${length}` : ""}); a name rule does not open ${rule}.`;
  }
  return "See destinations.allow and destinations.deny in the ws2s config.";
}

/** How often ws2s.js 2.1.4's Redis client opens a lost connection again before it gives up. */
const LEGACY_RECONNECTS = 9;

/**
 * A reply as ws2s.js 2.1.4's Redis client hands it over: ["error", words] or ["response", value], the
 * value a string, an integer as a number, an array as 2.1.4's numbered text.
 */
function legacyReply(reply) {
  if (reply instanceof RedisError) return ["error", reply.message];
  if (reply === null) return ["error", "a null object is recevied form redis server"];
  if (Array.isArray(reply) && reply.length === 0) return ["error", "an empty result is recevied form redis server"];
  if (typeof reply === "number" || typeof reply === "bigint") return ["response", Number(reply)];
  return ["response", legacyText(reply, 0)];
}

/** 2.1.4's text of a reply inside a reply: arrays numbered "1) ", one item a line, indented 3 spaces per level; nil and empty arrays as "". */
function legacyText(reply, depth) {
  if (reply instanceof RespPush) reply = reply.items;
  if (reply instanceof Map) reply = [...reply].flat();
  if (reply instanceof Set) reply = [...reply];
  if (reply === null) return "";
  if (reply instanceof RedisError) return reply.message;
  if (reply instanceof Uint8Array) return new TextDecoder().decode(reply);
  if (Array.isArray(reply)) return reply.map((item, i) => `${i + 1}) ${legacyText(item, depth + 1)}`).join(`\n${"   ".repeat(depth)}`);
  return String(reply);
}

/** The connect request, with the SSH fields only when given (as ws2s.js 2.1.4 sends them). */
function connectRequest({ host, port, binary, ssh, tls, tlsServerName, udp, resumable }) {
  const request = { command: "connect", host, port };
  if (binary) request.binary = true;
  if (resumable) request.resumable = true;
  if (udp) request.udp = true;
  if (tls) request.tls = true;
  if (tls && tlsServerName) request.tlsServerName = tlsServerName;
  for (const [key, value] of Object.entries(ssh ?? {})) if (value !== undefined && value !== null) request[`ssh_${key}`] = value;
  return request;
}

export class WS2S {
  /**
   * @param {string} url ws:// or wss:// address of the ws2s server
   * @param {object} [options] { WebSocket (a constructor, for Node without a global one), token,
   *   reconnect: { retries, minDelayMs, maxDelayMs } for the callback sockets }
   */
  constructor(url, options = {}) {
    this.ws2sServerAddress = url;
    this.options = options;
  }

  #openWebSocket(url = this.ws2sServerAddress) {
    const Impl = this.options.WebSocket ?? globalThis.WebSocket;
    if (!Impl) throw new Error("no WebSocket: pass { WebSocket } (Node 20: run with --experimental-websocket or use the ws package)");
    const protocols = this.options.token ? ["ws2s", `token.${this.options.token}`] : undefined;
    const ws = protocols ? new Impl(url, protocols) : new Impl(url);
    ws.binaryType = "arraybuffer";
    return ws;
  }

  /** Why the WebSocket did not open (a Ws2sOpenError), asked of the server. */
  #whyNotOpen() {
    return whyNotOpen(this.ws2sServerAddress, this.options);
  }

  /**
   * The ws2s.js 2.1.4 socket: callbacks onReady, onOpen, onRecv(Uint8Array), onClose, onError. onError gets
   * what 2.1.4 gave it: the server's response ({ success, code, message }) for a failed request, the
   * WebSocket's error event otherwise; when the WebSocket did not open, that event comes once the server
   * has been asked why, with the answer as `message` (and as `error`, a Ws2sOpenError), then onClose.
   */
  newSocket() {
    return this.#newSocket(this.options.reconnect);
  }

  #newSocket(reconnect) {
    const socket = {
      onReady: () => {},
      onOpen: () => {},
      onRecv: () => {},
      onClose: () => {},
      onError: () => {},
      // `options` (new, after 2.1.4's arguments): { tls, tlsServerName } for TLS to the destination.
      connect: (host, port, ssh_host, ssh_port, ssh_username, ssh_password, ssh_private_key, ssh_private_key_password, options = {}) =>
        send(connectRequest({ host, port, tls: options.tls, tlsServerName: options.tlsServerName,
          ssh: { host: ssh_host, port: ssh_port, username: ssh_username, password: ssh_password,
            private_key: ssh_private_key, private_key_password: ssh_private_key_password } })),
      startTls: (tlsServerName) => send(tlsServerName ? { command: "starttls", tlsServerName } : { command: "starttls" }),
      send: (data) => send({ command: "send", data }),
      sendb: (bytes) => send({ command: "sendb", data: toBase64(bytes instanceof Uint8Array ? bytes : encoder.encode(bytes)) }),
      close: () => {
        closedByUser = true;
        if (ws.readyState === 1) send({ command: "close" });
      },
    };
    let ws;
    let attempts = 0;
    let closedByUser = false;
    const send = (request) => ws.send(JSON.stringify(request));
    const open = () => {
      const current = (ws = this.#openWebSocket());
      const ping = setInterval(() => current.readyState === 1 && current.send('{"command":"ping"}'), PING_INTERVAL_MS);
      let opened = false;
      let failed = false;
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        clearInterval(ping);
        socket.onClose();
        if (reconnect && !closedByUser && attempts < (reconnect.retries ?? Infinity)) {
          const delay = Math.min(reconnect.maxDelayMs ?? 10000, (reconnect.minDelayMs ?? 500) * 2 ** attempts++);
          setTimeout(open, delay);
        }
      };
      // Not opened: onError once the server has said why, then onClose (browsers close a WebSocket whose
      // handshake failed, Node 20's never does).
      const fail = (event) => {
        if (failed) return;
        failed = true;
        this.#whyNotOpen().then((error) => {
          Object.defineProperties(event, {
            message: { value: error.message, enumerable: true, configurable: true },
            error: { value: error, enumerable: true, configurable: true },
          });
          socket.onError(event);
          end();
        });
      };
      current.onopen = () => { opened = true; attempts = 0; socket.onReady(); };
      current.onerror = (event) => (opened ? socket.onError(event) : fail(event));
      current.onclose = () => (opened ? end() : fail(new Event("error")));
      current.onmessage = (event) => {
        if (typeof event.data !== "string") return socket.onRecv(new Uint8Array(event.data));
        const response = JSON.parse(event.data);
        if (response.code < 0) return socket.onRecv(fromBase64(response.data));
        if (response.code === 0) {
          if (response.message === "connect done") socket.onOpen();
          if (response.message === "close done") current.close();
          return;
        }
        if (response.code === 5 || response.code === 3) { current.close(); return; }
        socket.onError(response);
      };
    };
    open();
    return socket;
  }

  /**
   * The ws2s.js 2.1.4 Redis client (its spelling), as 2.1.4 behaves: onSocketReady (the session is open),
   * onReady (connected, AUTH sent if a password is given; onReconnected instead after a reconnect),
   * onResponse with strings, integers as numbers and arrays as 2.1.4's text ("1) a\n2) b", nested ones
   * indented), onError with Redis's error words, "a null object is recevied form redis server" for nil,
   * "an empty result is recevied form redis server" for an empty array, the server's response or the
   * WebSocket's error event (see newSocket) — after which it closes and opens again, at most 9 times, then
   * onError("connection loss, max reconnect times reached"). `close()` (new) ends it, saying nothing.
   * For typed replies (arrays, null, Map), use redis().
   */
  newRedisCient(host, port, auth, ssh_host, ssh_port, ssh_username, ssh_password, ssh_private_key, ssh_private_key_password) {
    const client = {
      reconnectCount: 0,
      onSocketReady: () => {},
      onReconnected: () => {},
      onReady: () => {},
      onResponse: () => {},
      onError: () => {},
    };
    let socket;
    let closed = false;
    const open = () => {
      const parser = new RespParser();
      const current = (socket = this.#newSocket(null));
      current.onReady = () => {
        client.onSocketReady();
        current.connect(host, port, ssh_host, ssh_port, ssh_username, ssh_password, ssh_private_key, ssh_private_key_password);
      };
      current.onOpen = () => {
        if (auth) client.request(`auth ${auth}`);
        if (client.reconnectCount > 0) client.onReconnected();
        else client.onReady();
      };
      current.onRecv = (bytes) => {
        for (const reply of parser.feed(bytes)) {
          const [kind, value] = legacyReply(reply);
          if (kind === "error") client.onError(value);
          else client.onResponse(value);
        }
      };
      current.onClose = () => {
        if (closed) return;
        if (client.reconnectCount < LEGACY_RECONNECTS) {
          client.reconnectCount++;
          open();
        } else {
          client.onError("connection loss, max reconnect times reached");
        }
      };
      current.onError = (error) => {
        current.close();
        client.onError(error);
      };
    };
    client.request = (line) => {
      const commands = line.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
      socket.send(commands.map((l) => encodeCommand(splitCommandLine(l))).join(""));
    };
    client.close = () => {
      closed = true;
      socket.close();
    };
    open();
    return client;
  }

  /** newRedisCient under its right spelling: the same 2.1.4 client. */
  newRedisClient(...args) {
    return this.newRedisCient(...args);
  }

  /**
   * Opens a session and connects it: resolves to a Ws2sSocket once the server says `connect done`,
   * rejects with a Ws2sError (its code and message; for code 4, `hint` says which config keys would allow
   * it) if it cannot, or with a Ws2sOpenError (why, as the server says) if the session did not open.
   * @param {{host: string, port: number, binary?: boolean, ssh?: object, tls?: boolean, tlsServerName?: string, udp?: boolean,
   *   resumable?: boolean | { timeoutMs?: number, minDelayMs?: number, maxDelayMs?: number }}} target
   *   (`udp`: a UDP socket, each write one datagram, each read one datagram; when the server enables UDP)
   *   (`resumable`: the socket outlives a lost WebSocket, when the server offers it: see Ws2sSocket)
   */
  async connect(target) {
    const ws = this.#openWebSocket();
    await new Promise((resolve, reject) => {
      let failed = false;
      const fail = () => {
        if (failed) return;
        failed = true;
        this.#whyNotOpen().then(reject);
      };
      ws.onopen = () => {
        ws.onerror = null;
        resolve();
      };
      ws.onerror = fail;
      ws.onclose = fail;
    });
    const resume = target.resumable
      ? { ...resumeOptions(target.resumable), reopen: (token) => this.#openWebSocket(resumeUrl(this.ws2sServerAddress, token)) }
      : null;
    const socket = new Ws2sSocket(ws, Boolean(target.binary), resume);
    try {
      await socket.request(connectRequest(target));
    } catch (error) {
      ws.close();
      if (error instanceof Ws2sError && error.code === 4) {
        const hint = refusalHint(error.message, target.port);
        if (hint) error.hint = hint;
      }
      throw error;
    }
    return socket;
  }

  /**
   * Opens a Wisp session to this server: many sockets over one WebSocket (ws2s's /wisp/ endpoint, or `path`), each
   * opened with `connect({ host, port, udp })` and shaped as the sockets connect() gives. Rejects with a
   * Ws2sOpenError (why, as the server says) if the WebSocket does not open.
   * @param {{ path?: string }} [options]
   */
  wisp({ path = "/wisp/" } = {}) {
    const url = new URL(path, this.ws2sServerAddress).toString();
    return WispSession.open(url, { WebSocket: this.options.WebSocket, token: this.options.token, whyNotOpen: (u) => whyNotOpen(u, this.options) });
  }

  /**
   * Connects to a Redis server (binary mode) and authenticates if a password is given (with an ACL
   * username if one is). A refused AUTH closes the connection (its ws2s session with it) and rejects.
   * `resumable`: the connection outlives a lost WebSocket (see Ws2sSocket): the same Redis client, nothing
   * lost, where `reconnect` opens a new one; with both, reconnect takes over when a resume fails.
   */
  async redis({ host, port, username, password, ssh, tls, tlsServerName, reconnect, resumable }) {
    const open = () => this.connect({ host, port, binary: true, ssh, tls, tlsServerName, resumable });
    const login = password ? (username ? ["AUTH", username, password] : ["AUTH", password]) : null;
    const connection = new RedisConnection(await open(), { reopen: reconnect ? open : null, reconnect, login });
    if (login) {
      try {
        await connection.command(...login);
      } catch (error) {
        await connection.close();
        throw error;
      }
    }
    return connection;
  }
}

/** How often a resumable socket acknowledges: every 64 KiB received, or sent (spec/protocol.md, Resumable sessions). */
const ACK_EVERY = 64 * 1024;

/**
 * The most a resumable socket has written and not seen taken, in bytes and in messages: within the server's queue (its
 * default limits are 4 MiB and 64 requests), so that the server can always read this socket's acks, which it needs to
 * read its peer on (spec/protocol.md, Resumable sessions). A write past it waits.
 */
const WINDOW_BYTES = 1024 * 1024;
const WINDOW_MESSAGES = 32;

/** WebSocket close codes with which ws2s ends a session itself (normal, going away, policy, too big, error): no resume follows. */
const SESSION_ENDED = new Set([1000, 1001, 1008, 1009, 1011]);

/**
 * How a resumable socket comes back: `true` for the defaults, or `{ timeoutMs, minDelayMs, maxDelayMs, ackOnRead }`
 * (`ackOnRead`: acknowledge the peer's bytes as the app reads them, not as they arrive, so that the server, which keeps at
 * most its window of unacknowledged bytes, stops reading the peer while the app does not read: bounded memory both sides).
 */
function resumeOptions(resumable) {
  const given = typeof resumable === "object" && resumable !== null ? resumable : {};
  return { timeoutMs: given.timeoutMs ?? 30_000, minDelayMs: given.minDelayMs ?? 250, maxDelayMs: given.maxDelayMs ?? 5000, ackOnRead: Boolean(given.ackOnRead) };
}

/** How long close() waits for the server's answer before it closes the WebSocket regardless (a network gone silent). */
const CLOSE_ANSWER_MS = 5000;

/** A binary-mode socket that is not resumable writes while its WebSocket holds less than this unsent; a write past it waits. */
const UNSENT_BYTES = 1024 * 1024;
const UNSENT_POLL_MS = 5;

/** The server's URL with `instance` (the token's part before its first dot) for a balancer to route by; other parameters kept. */
function resumeUrl(url, token) {
  const withInstance = new URL(url);
  withInstance.searchParams.set("instance", token.split(".")[0]);
  return withInstance.toString();
}

/**
 * A connected ws2s session with promises: write, read (or for await), shutdown, close.
 *
 * Resumable (connect with `resumable`, on a server that offers it): when the WebSocket is lost without a
 * close this side asked for, the socket is `resuming`: it opens a new WebSocket with backoff and takes the
 * session over (`resume`), then sends again what the server had not taken, and a `shutdown` or `ping` it had
 * no answer for. Reads, writes and their promises see one unbroken stream; `onResume` hears each resume.
 * For that it keeps the bytes it wrote until the server says it took them (`ack` every 64 KiB, answered
 * with `taken`), and counts the peer's bytes it had.
 */
export class Ws2sSocket {
  #ws;
  #binary;
  /** What the current WebSocket owes an answer to, in request order: { request, resolve, reject, sent, chunk?, done?, internal? }. */
  #answers = [];
  #chunks = [];
  #readers = [];
  #ended = false;
  /** The error reads end with (a resumable socket that could not resume); null: they end with null. */
  #failure = null;
  #why = null;
  #over = false;
  #closing = false;
  #closed;
  #resolveClosed;
  #ping;
  // Resumption: the options (null: not asked), the token (null: the server gave none), the counts since the connect.
  #resume;
  #token = null;
  #resuming = false;
  #received = 0;
  /** The peer's bytes the app has read (counted with ackOnRead: what the acks say then). */
  #consumed = 0;
  #written = 0;
  #taken = 0;
  /** The bytes written that the server has not said it took: { start, bytes, entry } (entry: the request's answer, or null for a binary frame). */
  #kept = [];
  #ackedReceived = 0;
  #ackedWritten = 0;
  /** Writes waiting for room in the window (woken when the server takes more, or the socket ends). */
  #roomWaiters = [];
  /** The last write's turn: writes take their place in the window in the order they were made. */
  #writing = Promise.resolve();
  /** Ends the resume attempt or the wait between attempts under way (close() while resuming). */
  #interrupt = null;

  /**
   * Called when the WebSocket is lost and the socket starts resuming: `{ code, reason }` (the WebSocket's close code and reason).
   */
  onResuming = () => {};

  /**
   * Called after each resume, once the socket is open again: `{ attempts, lostMs, received, taken, resent, requests }`:
   * the tries it took, how long the socket was away, the peer's bytes it had (the server sends again what follows),
   * what the server had taken of this socket's bytes, how many bytes it sent again from there, and which requests it
   * sent again (`shutdown`, `ping`).
   */
  onResume = () => {};

  /**
   * @param {WebSocket} ws the open WebSocket of the session
   * @param {boolean} binary
   * @param {{ timeoutMs: number, minDelayMs: number, maxDelayMs: number, reopen: (token: string) => WebSocket } | null} [resume]
   *   how to resume, for a connect that asked to be resumable
   */
  constructor(ws, binary, resume = null) {
    this.#binary = binary;
    this.#resume = resume;
    this.#closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    // The ping is answered (ping done) like any request: it takes its place among the answers.
    this.#ping = setInterval(() => {
      if (!this.#resuming && !this.#ended && this.#ws.readyState === 1) this.#transmit({ request: { command: "ping" }, internal: true });
    }, PING_INTERVAL_MS);
    this.#attach(ws);
  }

  #attach(ws) {
    this.#ws = ws;
    ws.onmessage = (event) => this.#ws === ws && this.#message(event.data);
    ws.onerror = null;
    ws.onclose = (event) => this.#ws === ws && this.#lost(event);
  }

  /** "open", "resuming" (a resumable socket whose WebSocket was lost, coming back), or "closed" once the session is over. */
  get state() {
    if (this.#resuming) return "resuming";
    return this.#why || this.#over || this.#ws.readyState > 1 ? "closed" : "open";
  }

  /** Does this socket resume by itself (it asked to, and the server gave it a token)? */
  get resumable() {
    return this.#token !== null;
  }

  /**
   * Resolves once the session is over, with why: `{ by: "peer", reason }` (the peer closed the connection; with
   * `broken: true` it broke: a reset, a network error), `{ by: "ws2s", code, reason }` (the server closed the session: 1001 restarting, 1009
   * a message over its limit, …), `{ by: "network", code: 1006, reason }` (with `error`, a Ws2sError,
   * when a resumable socket could not resume: code 9 refused, code 5 not back in time), or `{ by: "you" }`.
   */
  get closed() {
    return this.#closed;
  }

  /** The WebSocket ended: the session is over, or (resumable, not a close this side asked for or one that ends the session) it resumes. */
  #lost(event) {
    if (this.#token !== null && !this.#closing && !this.#ended && !SESSION_ENDED.has(event.code)) {
      this.#resumeWithBackoff(event);
      return;
    }
    // Why it ended, unless known already (the peer closed, or you did): ws2s's close code and words, or the network.
    this.#finish(event.code === 1006
      ? { by: "network", code: 1006, reason: "the connection to the ws2s server broke" }
      : { by: "ws2s", code: event.code, reason: event.reason || (event.code === 1001 ? "server shutting down" : "") });
  }

  /** The session is over: reads end (with `failure`, if any), unanswered requests reject, `closed` resolves. */
  #finish(why, failure = null) {
    if (this.#over) return;
    this.#over = true;
    this.#resuming = false;
    clearInterval(this.#ping);
    this.#why ??= why;
    this.#failure = failure;
    this.#end();
    for (const answer of this.#answers.splice(0)) if (!answer.internal) answer.reject(failure ?? new Ws2sError(3, "the ws2s session closed"));
    this.#kept = [];
    this.#resolveClosed(this.#why);
  }

  async #resumeWithBackoff(event) {
    this.#resuming = true;
    const { timeoutMs, minDelayMs, maxDelayMs } = this.#resume;
    const lostAt = Date.now();
    const deadline = lostAt + timeoutMs;
    let delay = minDelayMs;
    let attempts = 0;
    let last = "";
    try { this.onResuming({ code: event.code, reason: event.reason ?? "" }); } catch { /* the app's own */ }
    while (this.#resuming) {
      attempts++;
      const outcome = await this.#attempt(deadline, { attempts, lostAt });
      if (!this.#resuming || outcome.resumed) return; // closed meanwhile, or open again
      if (outcome.refused) {
        this.#finish({ by: "network", code: 1006, reason: outcome.refused.message, error: outcome.refused }, outcome.refused);
        return;
      }
      // A try cut short by the time limit says less than the one before it.
      last = outcome.cut && last ? last : outcome.why;
      const wait = Math.min(delay, deadline - Date.now());
      if (wait <= 0) break;
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.#interrupt = () => { clearTimeout(timer); resolve(); };
      });
      this.#interrupt = null;
      delay = Math.min(delay * 2, maxDelayMs);
    }
    if (!this.#resuming) return;
    const error = new Ws2sError(5, `connection lost: the ws2s session could not be resumed within ${timeoutMs / 1000} s `
      + `(${attempts} attempt${attempts === 1 ? "" : "s"}; the last: ${last})`);
    this.#finish({ by: "network", code: 1006, reason: error.message, error }, error);
  }

  /**
   * One try: a new WebSocket (with ?instance=), `resume` with the token and the count of peer bytes had. Resolves
   * with { resumed } (the socket goes on over it), { refused } (code 9, or another error: no more tries), or { why } (try again).
   */
  #attempt(deadline, progress) {
    return new Promise((resolve) => {
      let ws;
      try {
        ws = this.#resume.reopen(this.#token);
      } catch (error) {
        resolve({ why: String(error?.message ?? error) });
        return;
      }
      let settled = false;
      const settle = (outcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#interrupt = null;
        if (!outcome.resumed) {
          ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
          try { ws.close(); } catch { /* never opened */ }
        }
        resolve(outcome);
      };
      const timer = setTimeout(() => settle({ why: "no answer before the time was up", cut: true }), Math.max(0, deadline - Date.now()));
      this.#interrupt = () => settle({ why: "closed" });
      ws.onopen = () => {
        // Acknowledging as the app reads: what it has not read yet is asked for again rather than held here too, so that an
        // unread socket holds one window in all, however often it resumes (reads wait meanwhile; nothing comes on a lost WebSocket).
        if (this.#resume.ackOnRead) {
          this.#chunks = [];
          this.#received = this.#consumed;
        }
        ws.send(JSON.stringify({ command: "resume", token: this.#token, received: this.#received }));
      };
      ws.onerror = () => settle({ why: ws.readyState === 3 || ws.readyState === 0 ? "the WebSocket did not open" : "the WebSocket broke" });
      ws.onclose = (event) => settle({ why: `the WebSocket closed (${event.code}${event.reason ? ` ${event.reason}` : ""})` });
      ws.onmessage = (event) => {
        let answer = null;
        try { answer = typeof event.data === "string" ? JSON.parse(event.data) : null; } catch { /* below */ }
        if (answer?.code === 0 && answer.message === "resume done") {
          // At once, in this event: the kept bytes the server sends next may come in the same turn.
          const unfit = this.#resumed(ws, answer, progress);
          settle(unfit ? { refused: unfit } : { resumed: true });
        } else {
          settle({ refused: answer && typeof answer.code === "number"
            ? new Ws2sError(answer.code, String(answer.message))
            : new Ws2sError(1, "resume: the server's answer is not ws2s's") });
        }
      };
    });
  }

  /**
   * `resume done` on `ws`: the socket goes on over it. What the server had taken (M) settles the writes whose answers
   * were lost; what it had not is sent again from M on, then a shutdown or ping whose answer was lost, then the requests
   * made while resuming. Returns an error if the answer does not fit what this socket sent.
   */
  #resumed(ws, answer, { attempts, lostAt }) {
    const taken = answer.taken;
    if (!Number.isSafeInteger(taken) || taken < this.#taken || taken > this.#written || typeof answer.resume !== "string")
      return new Ws2sError(1, `resume: the server says it took ${taken} bytes, but this socket wrote ${this.#written} `
        + `and ${this.#taken} were taken before`);
    this.#token = answer.resume;
    this.#resuming = false;
    const lost = this.#answers.splice(0);
    this.#attach(ws);
    this.#advance(taken);
    this.#ackedReceived = this.#received; // the resume said it
    const again = [];
    const unsent = [];
    for (const entry of lost) {
      if (entry.chunk) {
        // Data: taken (its answer was lost: it is done), or sent again below with the rest from M on.
        if (entry.chunk.start + entry.chunk.bytes.length <= taken) entry.resolve(entry.done);
      } else if (!entry.sent) unsent.push(entry);
      else if (entry.request.command === "shutdown" || entry.request.command === "ping") again.push(entry);
      else if (entry.request.command !== "ack") {
        entry.reject(new Ws2sError(5, `the answer to ${entry.request.command} was lost with the WebSocket (the session resumed without it)`));
      }
    }
    let resent = 0;
    for (const chunk of this.#kept) {
      const bytes = chunk.bytes.subarray(Math.max(0, taken - chunk.start));
      resent += bytes.length;
      if (chunk.entry) this.#transmit({ ...chunk.entry, request: { command: "sendb", data: toBase64(bytes) }, repeated: true });
      else ws.send(bytes);
    }
    for (const entry of again) this.#transmit({ ...entry, repeated: true });
    for (const entry of unsent) this.#transmit(entry);
    try {
      this.onResume({ attempts, lostMs: Date.now() - lostAt, received: this.#received, taken, resent,
        requests: again.filter((e) => !e.internal).map((e) => e.request.command) });
    } catch { /* the app's own */ }
    this.#maybeAck();
    return null;
  }

  /** The server took this socket's bytes up to `taken`: those before it need not be kept. */
  #advance(taken) {
    if (taken > this.#taken) this.#taken = taken;
    while (this.#kept.length > 0 && this.#kept[0].start + this.#kept[0].bytes.length <= this.#taken) this.#kept.shift();
    this.#wakeWriters();
  }

  #wakeWriters() {
    for (const wake of this.#roomWaiters.splice(0)) wake();
  }

  /** Waits until a write fits the window (asking what was taken, with an ack, when it does not); at once if the socket ended. */
  async #room() {
    while (!this.#ended && (this.#kept.length >= WINDOW_MESSAGES || this.#written - this.#taken >= WINDOW_BYTES)) {
      if (!this.#resuming && !this.#answers.some((answer) => answer.request.command === "ack")) this.#ack();
      await new Promise((resolve) => this.#roomWaiters.push(resolve));
    }
  }

  /** A write the server refused (code 3, …) was not taken: the bytes after it move back in the count. */
  #unwrite(chunk) {
    const at = this.#kept.indexOf(chunk);
    if (at < 0) return;
    this.#kept.splice(at, 1);
    for (const later of this.#kept.slice(at)) later.start -= chunk.bytes.length;
    this.#written -= chunk.bytes.length;
    this.#wakeWriters();
  }

  /** The peer's bytes an ack says this socket has: those it received, or with ackOnRead those the app has read. */
  get #acknowledgeable() {
    return this.#resume?.ackOnRead ? this.#consumed : this.#received;
  }

  /** Sends an `ack` once 64 KiB have come (or been read, with ackOnRead) or gone since the last one (a resumable socket, open). */
  #maybeAck() {
    if (this.#token === null || this.#resuming || this.#ended) return;
    if (this.#acknowledgeable - this.#ackedReceived < ACK_EVERY && this.#written - this.#ackedWritten < ACK_EVERY) return;
    this.#ack();
  }

  #ack() {
    this.#ackedReceived = Math.max(this.#ackedReceived, this.#acknowledgeable);
    this.#ackedWritten = this.#written;
    this.#transmit({ request: { command: "ack", received: this.#ackedReceived }, internal: true });
  }

  /** Queues a request's answer and sends it (while resuming it waits: the resume sends it). */
  #transmit(entry) {
    this.#answers.push(entry);
    entry.sent = !this.#resuming;
    if (entry.sent) this.#ws.send(JSON.stringify(entry.request));
  }

  #message(data) {
    if (typeof data !== "string") return this.#deliver(new Uint8Array(data));
    const response = JSON.parse(data);
    if (response.code === -1) return this.#deliver(fromBase64(response.data));
    if (response.code === 5) {
      // The peer closed: the stream ends once its bytes are read, and (as ws2s.js 2.1.4 does) the session closes; a
      // resumable one once the requests it sent again have their answers (after a resume, the peer's end may come first).
      // "connection closed by peer" alone is the peer's FIN; with a reason after it, the connection broke (a reset, …).
      this.#why ??= response.message === "connection closed by peer"
        ? { by: "peer", reason: response.message }
        : { by: "peer", reason: response.message, broken: true };
      this.#end();
      this.#closing = true;
      if (this.#token === null || !this.#answers.some((answer) => answer.repeated)) this.#ws.close();
      return;
    }
    const answer = this.#answers.shift();
    if (!answer) return;
    if (this.#closing && this.#ended && this.#answers.length === 0 && this.#ws.readyState === 1) queueMicrotask(() => this.#ws.close());
    if (answer.request.command === "ack") {
      if (response.code === 0 && Number.isSafeInteger(response.taken)) this.#advance(response.taken);
      return;
    }
    if (response.code === 0 && answer.request.command === "connect") this.#connected(response);
    if (answer.internal) return;
    if (response.code === 0) {
      if (answer.chunk) this.#advance(answer.chunk.start + answer.chunk.bytes.length);
      answer.resolve(answer.done ?? response.message);
    } else if (answer.repeated && answer.request.command === "shutdown" && response.code === 3) {
      // Sent again after a resume and the peer has ended meanwhile: the lost one may have been done, and the peer is gone either way.
      answer.resolve("shutdown done");
    } else {
      if (answer.chunk) this.#unwrite(answer.chunk);
      answer.reject(new Ws2sError(response.code, response.message));
    }
  }

  /** A connect done: resumable if asked and the answer has a token; the counts start again. */
  #connected(response) {
    this.#token = this.#resume && typeof response.resume === "string" ? response.resume : null;
    this.#received = this.#consumed = this.#written = this.#taken = this.#ackedReceived = this.#ackedWritten = 0;
    this.#kept = [];
  }

  #deliver(chunk) {
    if (this.#token !== null) this.#received += chunk.length;
    const reader = this.#readers.shift();
    if (reader) reader.resolve(this.#handOut(chunk));
    else this.#chunks.push(chunk);
    this.#maybeAck();
  }

  /** A chunk as the app reads it: counted as read (with ackOnRead, an ack may follow). */
  #handOut(chunk) {
    if (this.#token !== null) this.#consumed += chunk.length;
    return chunk;
  }

  #end() {
    if (this.#ended) return;
    this.#ended = true;
    this.#wakeWriters();
    for (const reader of this.#readers.splice(0)) {
      if (this.#failure) reader.reject(this.#failure);
      else reader.resolve(null);
    }
  }

  /** Sends a request and resolves with the server's answer (its message), or rejects with a Ws2sError. */
  request(request) {
    return new Promise((resolve, reject) => this.#transmit({ request, resolve, reject }));
  }

  /**
   * Upgrades the open connection to TLS in place (after the protocol's own STARTTLS and its go-ahead);
   * rejects with a Ws2sError code 8 if the handshake fails (code 7 on a resumable socket: its answer could be lost).
   */
  startTls(tlsServerName) {
    return this.request(tlsServerName ? { command: "starttls", tlsServerName } : { command: "starttls" });
  }

  /** Writes bytes or text to the peer. In binary mode, bytes go as one binary frame (no answer to wait for). */
  async write(data) {
    if (this.#ended) throw new Ws2sError(3, "illegal socket status, please connect again");
    const text = typeof data === "string";
    if (this.#token === null) {
      if (text) return this.request({ command: "send", data });
      if (this.#binary) {
        // No answer paces a binary frame: the WebSocket's own unsent bytes do (a browser's WebSocket has no drain event).
        while (this.#ws.bufferedAmount > UNSENT_BYTES && this.#ws.readyState === 1) await new Promise((resolve) => setTimeout(resolve, UNSENT_POLL_MS));
        if (this.#ended || this.#ws.readyState !== 1) throw new Ws2sError(3, "illegal socket status, please connect again");
        this.#ws.send(data);
        return "sent";
      }
      return this.request({ command: "sendb", data: toBase64(data) });
    }
    // Resumable: the bytes are kept (a copy: the caller may reuse its buffer) until the server has taken them, and at most a
    // window of them, in the order the writes were made.
    const bytes = text ? encoder.encode(data) : new Uint8Array(data);
    const turn = this.#writing.then(() => this.#room());
    this.#writing = turn.catch(() => {});
    await turn;
    if (this.#ended) throw new Ws2sError(3, "illegal socket status, please connect again");
    const chunk = { start: this.#written, bytes, entry: null };
    this.#written += chunk.bytes.length;
    this.#kept.push(chunk);
    let sent;
    if (!text && this.#binary) {
      if (!this.#resuming) this.#ws.send(chunk.bytes);
      sent = "sent";
    } else {
      sent = new Promise((resolve, reject) => {
        chunk.entry = { request: text ? { command: "send", data } : { command: "sendb", data: toBase64(chunk.bytes) },
          resolve, reject, chunk, done: text ? "send done" : "sendb done" };
        this.#transmit(chunk.entry);
      });
    }
    this.#maybeAck();
    return sent;
  }

  /** The next chunk of bytes from the peer, or null once it has closed (a resumable socket that could not resume: rejects with why). */
  read() {
    if (this.#chunks.length > 0) {
      const chunk = this.#handOut(this.#chunks.shift());
      this.#maybeAck();
      return Promise.resolve(chunk);
    }
    if (this.#ended) return this.#failure ? Promise.reject(this.#failure) : Promise.resolve(null);
    return new Promise((resolve, reject) => this.#readers.push({ resolve, reject }));
  }

  async *[Symbol.asyncIterator]() {
    for (let chunk = await this.read(); chunk !== null; chunk = await this.read()) yield chunk;
  }

  /** Half-close: FIN to the peer; reading goes on until it closes. */
  shutdown() {
    return this.request({ command: "shutdown" });
  }

  /** Closes the connection and the session (while resuming: gives up resuming; the server ends the session after its grace). */
  async close() {
    this.#why ??= { by: "you" };
    this.#closing = true;
    if (this.#resuming) {
      this.#interrupt?.();
      this.#finish({ by: "you" });
      return;
    }
    if (this.#ws.readyState === 1) {
      // The server's answer, or CLOSE_ANSWER_MS of silence (a dead network: no answer, no reset): the session is over for this side.
      let timer;
      const answered = await Promise.race([
        this.request({ command: "close" }).then(() => true, () => true),
        new Promise((resolve) => (timer = setTimeout(() => resolve(false), CLOSE_ANSWER_MS))),
      ]);
      clearTimeout(timer);
      this.#ws.close();
      if (!answered) this.#finish({ by: "you" });
    }
    this.#end();
  }
}

/**
 * Redis over a ws2s socket: command(...words) and request("get name") resolve with the parsed reply.
 * Pub/sub messages (SUBSCRIBE, PSUBSCRIBE; RESP2 and RESP3 pushes) and MONITOR lines go to
 * `onPush(message)` and are never taken as the reply to another command. `closed` resolves with why the
 * connection ended (see Ws2sSocket.closed).
 */
export class RedisConnection {
  #socket;
  #parser = new RespParser();
  #pending = [];
  #subscribed = 0;
  #channels = new Set();
  #patterns = new Set();
  #monitoring = false;
  #options;
  #db = null;
  #reconnecting = false;
  #byYou = false;
  #closed;
  #resolveClosed;

  /** Called with each push: `{ kind: "message", channel, message }`, `{ kind: "pmessage", pattern, channel, message }`, `{ kind: "monitor", line }`, or `{ kind, items }` for other pushes. */
  onPush = () => {};

  /** Called after an automatic reconnect (with `reconnect` options): AUTH, SELECT and subscriptions are restored. */
  onReconnect = () => {};

  /** Called when a resumable connection lost its WebSocket and is resuming (see Ws2sSocket.onResuming). */
  onResuming = () => {};

  /** Called after each resume of a resumable connection: the same Redis client, nothing lost (see Ws2sSocket.onResume). */
  onResume = () => {};

  /**
   * @param {Ws2sSocket} socket
   * @param {{ reopen?: () => Promise<Ws2sSocket>, reconnect?: { retries?: number, minDelayMs?: number, maxDelayMs?: number }, login?: string[] }} [options]
   */
  constructor(socket, options = {}) {
    this.#options = options;
    this.#closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.#attach(socket);
  }

  #attach(socket) {
    this.#socket = socket;
    socket.onResuming = (why) => this.onResuming(why);
    socket.onResume = (resume) => this.onResume(resume);
    this.#parser = new RespParser();
    this.#pump().then(() => this.#ended(socket));
  }

  /** "open", "resuming" (a resumable connection coming back), "reconnecting" (automatic reconnect under way), or "closed". */
  get state() {
    return this.#reconnecting ? "reconnecting" : this.#socket.state;
  }

  /** Resolves once the connection is over for good (after any reconnect attempts), with why (see Ws2sSocket.closed). */
  get closed() {
    return this.#closed;
  }

  /** The session ended: over for good, or (with `reconnect`) opened again with backoff, restoring AUTH, SELECT and subscriptions. */
  async #ended(socket) {
    const why = await socket.closed;
    const { reopen, reconnect, login } = this.#options;
    if (this.#byYou || !reopen || why.by === "you") return this.#resolveClosed(why);
    this.#reconnecting = true;
    const retries = reconnect.retries ?? 10;
    let delay = reconnect.minDelayMs ?? 500;
    for (let attempt = 0; attempt < retries && !this.#byYou; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, reconnect.maxDelayMs ?? 30_000);
      let next;
      try {
        next = await reopen();
      } catch {
        continue;
      }
      this.#monitoring = false;
      this.#subscribed = 0;
      const channels = [...this.#channels], patterns = [...this.#patterns];
      this.#channels.clear();
      this.#patterns.clear();
      this.#attach(next);
      try {
        if (login) await this.command(...login);
        if (this.#db !== null) await this.command("SELECT", this.#db);
        if (channels.length) await this.command("SUBSCRIBE", ...channels);
        if (patterns.length) await this.command("PSUBSCRIBE", ...patterns);
      } catch {
        continue; // this session ended too: its own #ended takes over
      }
      this.#reconnecting = false;
      this.onReconnect();
      return;
    }
    this.#reconnecting = false;
    this.#resolveClosed(why);
  }

  async #pump() {
    try {
      for await (const chunk of this.#socket) {
        for (const reply of this.#parser.feed(chunk)) this.#dispatch(reply);
      }
    } catch (error) {
      if (error instanceof Ws2sError) {
        // A resumable connection that could not resume: its words for every command waiting.
        for (const pending of this.#pending.splice(0)) pending.reject(error);
        return;
      }
      // A reply this parser cannot read: refused in words, never a hang.
      const refused = new RedisError(`ERR ws2s.js cannot parse the reply: ${error.message}`);
      for (const pending of this.#pending.splice(0)) pending.reject(refused);
      this.#socket.close();
      return;
    }
    // The stream ended: the commands still waiting hear who ended it (a 1009 from ws2s is not Redis closing).
    if (this.#pending.length === 0) return;
    const why = await this.#socket.closed;
    const words = why.by === "peer" ? "connection closed by peer"
      : why.by === "ws2s" ? `ws2s closed the session: ${why.code} ${why.reason ?? ""}`.trim()
      : why.by === "network" ? "the connection to the ws2s server broke"
      : "connection closed";
    for (const pending of this.#pending.splice(0)) pending.reject(new Ws2sError(5, words));
  }

  #dispatch(reply) {
    if (reply instanceof RespPush) return this.#push(reply.items, true);
    // RESP2 pub/sub: while subscribed, messages are arrays that start with their kind.
    if (this.#subscribed > 0 && Array.isArray(reply) && (reply[0] === "message" || reply[0] === "pmessage")) return this.#push(reply, false);
    if (this.#monitoring && this.#pending.length === 0 && typeof reply === "string") return this.onPush({ kind: "monitor", line: reply });
    const pending = this.#pending[0];
    if (!pending) return;
    if (Array.isArray(reply) && /subscribe$/.test(String(reply[0])) && typeof reply[2] === "number") {
      // One confirmation per channel: the command is answered by its last one.
      const [kind, name, count] = reply;
      const names = kind.startsWith("p") ? this.#patterns : this.#channels;
      if (name !== null) (kind.includes("unsub") ? names.delete(name) : names.add(name));
      this.#subscribed = count;
      if (--pending.confirmations > 0) return;
    }
    this.#pending.shift();
    if (reply instanceof RedisError) return pending.reject(reply);
    if (pending.monitor && reply === "OK") this.#monitoring = true;
    if (pending.db !== undefined && reply === "OK") this.#db = pending.db;
    pending.resolve(reply);
  }

  #push(items, resp3) {
    const [kind, ...rest] = items;
    if (kind === "message") return this.onPush({ kind, channel: rest[0], message: rest[1] });
    if (kind === "pmessage") return this.onPush({ kind, pattern: rest[0], channel: rest[1], message: rest[2] });
    // RESP3 sends subscribe confirmations as pushes too: they answer the pending command.
    if (resp3 && /subscribe$/.test(String(kind))) return this.#dispatch(items);
    return this.onPush({ kind: String(kind), items: rest });
  }

  command(...words) {
    const name = String(words[0] ?? "").toLowerCase();
    const channels = words.length - 1;
    // (P)UNSUBSCRIBE with no argument confirms each current channel (pattern), and at least once.
    const current = name.startsWith("p") ? this.#patterns.size : this.#channels.size;
    const confirmations = /subscribe$/.test(name) ? Math.max(1, channels || current) : 1;
    return new Promise((resolve, reject) => {
      this.#pending.push({ resolve, reject, confirmations, monitor: name === "monitor", db: name === "select" ? String(words[1]) : undefined });
      this.#socket.write(encodeCommandBytes(words)).catch((error) => {
        this.#pending.splice(this.#pending.findIndex((p) => p.resolve === resolve), 1);
        reject(error);
      });
    });
  }

  request(line) {
    return this.command(...splitCommandLine(line));
  }

  close() {
    this.#byYou = true;
    return this.#socket.close();
  }
}
