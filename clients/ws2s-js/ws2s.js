// ws2s.js 3: the browser (and Node >= 20) client for ws2s, a WebSocket server that gives
// JavaScript real TCP sockets. Drop-in for ws2s.js 2.1.4 (new WS2S(url).newSocket(),
// newRedisCient), plus a promise API, binary mode, typed errors and reconnection.

import { RespParser, RespPush, RedisError, encodeCommand, encodeCommandBytes, splitCommandLine } from "./resp.js";

export { RespParser, RespPush, RedisError, encodeCommand, encodeCommandBytes, splitCommandLine };

/** An error the ws2s server reported: `code` is the protocol's (2 connect failed, 3 no connection, 4 refused, 5 closed, 6 ssh, 7 bad request). */
export class Ws2sError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "Ws2sError";
    this.code = code;
  }
}

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

/** The connect request, with the SSH fields only when given (as ws2s.js 2.1.4 sends them). */
function connectRequest({ host, port, binary, ssh, tls, tlsServerName }) {
  const request = { command: "connect", host, port };
  if (binary) request.binary = true;
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

  #openWebSocket() {
    const Impl = this.options.WebSocket ?? globalThis.WebSocket;
    if (!Impl) throw new Error("no WebSocket: pass { WebSocket } (Node 20: run with --experimental-websocket or use the ws package)");
    const protocols = this.options.token ? ["ws2s", `token.${this.options.token}`] : undefined;
    const ws = protocols ? new Impl(this.ws2sServerAddress, protocols) : new Impl(this.ws2sServerAddress);
    ws.binaryType = "arraybuffer";
    return ws;
  }

  /** The ws2s.js 2.1.4 socket: callbacks onReady, onOpen, onRecv(Uint8Array), onClose, onError. */
  newSocket() {
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
      close: () => { closedByUser = true; send({ command: "close" }); },
    };
    const reconnect = this.options.reconnect;
    let ws;
    let ping;
    let attempts = 0;
    let closedByUser = false;
    const send = (request) => ws.send(JSON.stringify(request));
    const open = () => {
      ws = this.#openWebSocket();
      ping = setInterval(() => ws.readyState === 1 && send({ command: "ping" }), PING_INTERVAL_MS);
      ws.onopen = () => { attempts = 0; socket.onReady(); };
      ws.onerror = (error) => socket.onError(error);
      ws.onclose = () => {
        clearInterval(ping);
        socket.onClose();
        if (reconnect && !closedByUser && attempts < (reconnect.retries ?? Infinity)) {
          const delay = Math.min(reconnect.maxDelayMs ?? 10000, (reconnect.minDelayMs ?? 500) * 2 ** attempts++);
          setTimeout(open, delay);
        }
      };
      ws.onmessage = (event) => {
        if (typeof event.data !== "string") return socket.onRecv(new Uint8Array(event.data));
        const response = JSON.parse(event.data);
        if (response.code < 0) return socket.onRecv(fromBase64(response.data));
        if (response.code === 0) {
          if (response.message === "connect done") socket.onOpen();
          if (response.message === "close done") ws.close();
          return;
        }
        if (response.code === 5 || response.code === 3) { ws.close(); return; }
        socket.onError(response);
      };
    };
    open();
    return socket;
  }

  /** The ws2s.js 2.1.4 Redis client (its spelling): request("get name"), onReady, onResponse, onError. */
  newRedisCient(host, port, auth, ssh_host, ssh_port, ssh_username, ssh_password, ssh_private_key, ssh_private_key_password) {
    const client = { onReady: () => {}, onResponse: () => {}, onError: () => {} };
    let socket;
    let parser;
    const init = () => {
      parser = new RespParser();
      socket = this.newSocket();
      socket.onReady = () => socket.connect(host, port, ssh_host, ssh_port, ssh_username, ssh_password, ssh_private_key, ssh_private_key_password);
      socket.onOpen = () => {
        if (auth) client.request(`auth ${auth}`);
        client.onReady();
      };
      socket.onRecv = (bytes) => {
        for (const reply of parser.feed(bytes)) {
          if (reply instanceof RedisError) client.onError(reply.message);
          else client.onResponse(reply);
        }
      };
      socket.onClose = () => { if (!closed) setTimeout(init, 1000); };
      socket.onError = (error) => client.onError(error);
    };
    let closed = false;
    client.request = (line) => {
      const commands = line.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
      socket.send(commands.map((l) => encodeCommand(splitCommandLine(l))).join(""));
    };
    client.close = () => { closed = true; socket.close(); };
    init();
    return client;
  }

  newRedisClient(...args) {
    return this.newRedisCient(...args);
  }

  /**
   * Opens a session and connects it: resolves to a Ws2sSocket once the server says `connect done`,
   * rejects with a Ws2sError (its code and message) if it cannot.
   * @param {{host: string, port: number, binary?: boolean, ssh?: object, tls?: boolean, tlsServerName?: string}} target
   */
  async connect(target) {
    const ws = this.#openWebSocket();
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error(`cannot open ${this.ws2sServerAddress}`));
    });
    const socket = new Ws2sSocket(ws, Boolean(target.binary));
    try {
      await socket.request(connectRequest(target));
    } catch (error) {
      ws.close();
      throw error;
    }
    return socket;
  }

  /**
   * Connects to a Redis server (binary mode) and authenticates if a password is given (with an ACL
   * username if one is). A refused AUTH closes the connection (its ws2s session with it) and rejects.
   */
  async redis({ host, port, username, password, ssh, tls, tlsServerName, reconnect }) {
    const open = () => this.connect({ host, port, binary: true, ssh, tls, tlsServerName });
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

/** A connected ws2s session with promises: write, read (or for await), shutdown, close. */
export class Ws2sSocket {
  #ws;
  #binary;
  #answers = [];
  #chunks = [];
  #readers = [];
  #ended = false;
  #ending = null;
  #why = null;
  #closed;
  #resolveClosed;

  constructor(ws, binary) {
    this.#ws = ws;
    this.#binary = binary;
    this.#closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    const ping = setInterval(() => ws.readyState === 1 && ws.send('{"command":"ping"}'), PING_INTERVAL_MS);
    ws.onmessage = (event) => this.#message(event.data);
    ws.onclose = (event) => {
      clearInterval(ping);
      // Why it ended, unless known already (the peer closed, or you did): ws2s's close code and words, or the network.
      this.#why ??= event.code === 1006
        ? { by: "network", code: 1006, reason: "the connection to the ws2s server broke" }
        : { by: "ws2s", code: event.code, reason: event.reason || (event.code === 1001 ? "server shutting down" : "") };
      this.#end(new Ws2sError(5, "the ws2s session closed"));
      for (const answer of this.#answers.splice(0)) answer.reject(new Ws2sError(3, "the ws2s session closed"));
      this.#resolveClosed(this.#why);
    };
  }

  /** "open", or "closed" once the session is over. */
  get state() {
    return this.#why || this.#ws.readyState > 1 ? "closed" : "open";
  }

  /**
   * Resolves once the session is over, with why: `{ by: "peer", reason }` (the peer closed or broke the
   * connection), `{ by: "ws2s", code, reason }` (the server closed the session: 1001 restarting, 1009
   * a message over its limit, …), `{ by: "network", code: 1006 }`, or `{ by: "you" }`.
   */
  get closed() {
    return this.#closed;
  }

  #message(data) {
    if (typeof data !== "string") return this.#deliver(new Uint8Array(data));
    const response = JSON.parse(data);
    if (response.code === -1) return this.#deliver(fromBase64(response.data));
    if (response.code === 5) {
      // The peer closed: the stream ends once its bytes are read, and (as ws2s.js 2.1.4 does) the session closes.
      this.#why ??= { by: "peer", reason: response.message };
      this.#end(null);
      this.#ws.close();
      return;
    }
    const answer = this.#answers.shift();
    if (!answer) return;
    if (response.code === 0) answer.resolve(response.message);
    else answer.reject(new Ws2sError(response.code, response.message));
  }

  #deliver(chunk) {
    const reader = this.#readers.shift();
    if (reader) reader.resolve(chunk);
    else this.#chunks.push(chunk);
  }

  #end(error) {
    if (this.#ended) return;
    this.#ended = true;
    this.#ending = error;
    for (const reader of this.#readers.splice(0)) reader.resolve(null);
  }

  /** Sends a request and resolves with the server's answer (its message), or rejects with a Ws2sError. */
  request(request) {
    return new Promise((resolve, reject) => {
      this.#answers.push({ resolve, reject });
      this.#ws.send(JSON.stringify(request));
    });
  }

  /**
   * Upgrades the open connection to TLS in place (after the protocol's own STARTTLS and its go-ahead);
   * rejects with a Ws2sError code 8 if the handshake fails.
   */
  startTls(tlsServerName) {
    return this.request(tlsServerName ? { command: "starttls", tlsServerName } : { command: "starttls" });
  }

  /** Writes bytes or text to the peer. In binary mode, bytes go as one binary frame (no answer to wait for). */
  async write(data) {
    if (this.#ended) throw new Ws2sError(3, "illegal socket status, please connect again");
    if (typeof data === "string") return this.request({ command: "send", data });
    if (this.#binary) {
      this.#ws.send(data);
      return "sent";
    }
    return this.request({ command: "sendb", data: toBase64(data) });
  }

  /** The next chunk of bytes from the peer, or null once it has closed. */
  read() {
    if (this.#chunks.length > 0) return Promise.resolve(this.#chunks.shift());
    if (this.#ended) return Promise.resolve(null);
    return new Promise((resolve) => this.#readers.push({ resolve }));
  }

  async *[Symbol.asyncIterator]() {
    for (let chunk = await this.read(); chunk !== null; chunk = await this.read()) yield chunk;
  }

  /** Half-close: FIN to the peer; reading goes on until it closes. */
  shutdown() {
    return this.request({ command: "shutdown" });
  }

  /** Closes the connection and the session. */
  async close() {
    this.#why ??= { by: "you" };
    if (this.#ws.readyState === 1) {
      try { await this.request({ command: "close" }); } catch { /* already gone */ }
      this.#ws.close();
    }
    this.#end(null);
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
    this.#parser = new RespParser();
    this.#pump().then(() => this.#ended(socket));
  }

  /** "open", "reconnecting" (automatic reconnect under way), or "closed". */
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
      // A reply this parser cannot read: refused in words, never a hang.
      const refused = new RedisError(`ERR ws2s.js cannot parse the reply: ${error.message}`);
      for (const pending of this.#pending.splice(0)) pending.reject(refused);
      this.#socket.close();
      return;
    }
    for (const pending of this.#pending.splice(0)) pending.reject(new Ws2sError(5, "connection closed by peer"));
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
