// Many sockets over one WebSocket: a Wisp (v2, MercuryWorkshop's protocol) client for ws2s's /wisp/ endpoint, whose
// sockets have the same shape as ws2s.js's Ws2sSocket (write, read, for await, close, closed, state). Opened through
// WS2S.wisp(); see spec/wisp.md for the protocol as ws2s serves it.

import { Ws2sError, Ws2sOpenError } from "./errors.js";

const encoder = new TextEncoder();
const CONNECT = 1, DATA = 2, CONTINUE = 3, CLOSE = 4, INFO = 5;
const EXT_UDP = 1, EXT_CONFIRM = 5;
const HANDSHAKE_TIMEOUT_MS = 10_000;

/** A Wisp CLOSE reason as the ws2s code and words a Ws2sError carries (spec/wisp.md, "Close reasons"). */
const REASONS = {
  0x02: [5, "connection closed by peer"],
  0x03: [5, "connection closed by peer: network error"],
  0x41: [7, "bad request: the server cannot open this stream (an invalid destination, or UDP it does not offer)"],
  0x42: [2, "host unreachable"],
  0x43: [2, "connect timed out"],
  0x44: [2, "connection refused"],
  0x47: [5, "connection closed: no traffic for the idle timeout"],
  0x48: [4, "the destination is refused by the server's policy"],
  0x49: [2, "throttled: a limit of the server (streams, opens per second, connections per client, or credits)"],
};

function errorFor(reason) {
  const [code, words] = REASONS[reason] ?? [5, "connection closed"];
  return new Ws2sError(code, `${words} (wisp 0x${reason.toString(16).padStart(2, "0")})`);
}

function packet(type, stream, payload) {
  const bytes = new Uint8Array(5 + payload.length);
  bytes[0] = type;
  new DataView(bytes.buffer).setUint32(1, stream, true);
  bytes.set(payload, 5);
  return bytes;
}

/**
 * One WebSocket to a Wisp endpoint and the sockets it carries. `WispSession.open(url, options)` resolves once the
 * server's INFO and first CONTINUE have arrived; `connect({ host, port, udp })` opens a socket over it.
 */
export class WispSession {
  #ws;
  #streams = new Map();
  #nextId = 1;
  #initialCredits = 0;
  #udp = false;
  #confirms = false;
  #closed;
  #resolveClosed;
  #why = null;

  constructor(ws) {
    this.#ws = ws;
    this.#closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  /**
   * Opens the WebSocket (offering `wisp-v2`, and the token as `token.…` when given) and completes the handshake.
   * @param {string} url ws:// or wss:// address of the Wisp endpoint (ws2s: /wisp/)
   * @param {{ WebSocket?: Function, token?: string, whyNotOpen?: (url: string) => Promise<Error> }} [options]
   */
  static async open(url, options = {}) {
    const Impl = options.WebSocket ?? globalThis.WebSocket;
    if (!Impl) throw new Error("no WebSocket: pass { WebSocket } (Node 20: run with --experimental-websocket or use the ws package)");
    const ws = new Impl(url, options.token ? ["wisp-v2", `token.${options.token}`] : ["wisp-v2"]);
    ws.binaryType = "arraybuffer";
    const session = new WispSession(ws);
    await new Promise((resolve, reject) => {
      let settled = false;
      const fail = () => {
        if (settled) return;
        settled = true;
        clearTimeout(silent);
        (options.whyNotOpen ? options.whyNotOpen(url) : Promise.resolve(new Ws2sOpenError(url, `cannot open ${url}`))).then(reject);
      };
      // A WebSocket that opens but never says CONTINUE is not a Wisp endpoint (ws2s serving its own protocol there, say).
      const silent = setTimeout(() => {
        if (settled) return;
        settled = true;
        ws.onclose = null;
        ws.close();
        reject(new Ws2sOpenError(url, `${url} opened but did not answer as a Wisp server within ${HANDSHAKE_TIMEOUT_MS / 1000} s (is the server's wisp.path this path?)`));
      }, HANDSHAKE_TIMEOUT_MS);
      ws.onerror = fail;
      ws.onclose = fail;
      ws.onmessage = (event) => {
        const bytes = new Uint8Array(event.data);
        if (bytes[0] === INFO) {
          for (let at = 7; at + 5 <= bytes.length; at += 5 + new DataView(bytes.buffer).getUint32(at + 1, true))
            if (bytes[at] === EXT_UDP) session.#udp = true;
            else if (bytes[at] === EXT_CONFIRM) session.#confirms = true;
          // Ours: UDP and stream-open confirmation (a CONTINUE once a stream's socket is connected).
          ws.send(packet(INFO, 0, Uint8Array.of(2, 0, EXT_UDP, 0, 0, 0, 0, EXT_CONFIRM, 0, 0, 0, 0)));
        } else if (bytes[0] === CONTINUE) {
          session.#initialCredits = new DataView(bytes.buffer).getUint32(5, true);
          settled = true;
          clearTimeout(silent);
          session.#listen();
          resolve();
        }
      };
    });
    return session;
  }

  /** Does the server offer UDP (its INFO lists the extension)? */
  get udp() {
    return this.#udp;
  }

  /** "open", or "closed" once the WebSocket is gone. */
  get state() {
    return this.#why ? "closed" : "open";
  }

  /** Resolves, once the WebSocket is gone, with why: `{ by: "ws2s", code, reason }`, `{ by: "network", code: 1006 }` or `{ by: "you" }`. */
  get closed() {
    return this.#closed;
  }

  #listen() {
    this.#ws.onmessage = (event) => {
      const bytes = new Uint8Array(event.data);
      if (bytes.length < 5) return;
      const id = new DataView(bytes.buffer).getUint32(1, true);
      const stream = this.#streams.get(id);
      if (!stream) return;
      if (bytes[0] === DATA) stream.deliver(bytes.subarray(5));
      else if (bytes[0] === CONTINUE) stream.grant(new DataView(bytes.buffer).getUint32(5, true));
      else if (bytes[0] === CLOSE) {
        this.#streams.delete(id);
        stream.end(bytes[5]);
      }
    };
    this.#ws.onclose = (event) => {
      this.#why ??= event.code === 1006
        ? { by: "network", code: 1006, reason: "the connection to the ws2s server broke" }
        : { by: "ws2s", code: event.code, reason: event.reason };
      for (const stream of this.#streams.values()) stream.end(null, this.#why);
      this.#streams.clear();
      this.#resolveClosed(this.#why);
    };
  }

  /**
   * Opens a socket to host:port (UDP with `udp: true`, when the server offers it): resolves to a WispSocket once the
   * server says its socket is connected (ws2s confirms opens; a UDP socket, or one on a server that does not, at once), or rejects with a Ws2sError (code 4 refused by policy,
   * 2 unreachable, refused, timed out or throttled, 7 invalid) and the Wisp reason in its words.
   * @param {{ host: string, port: number, udp?: boolean }} target
   */
  connect({ host, port, udp = false }) {
    if (this.#why) return Promise.reject(new Ws2sError(3, "the Wisp session is closed"));
    if (!Number.isInteger(port) || port < 1 || port > 65535) return Promise.reject(new Ws2sError(7, "bad request: port must be an integer 1-65535"));
    if (udp && !this.#udp) return Promise.reject(new Ws2sError(7, "bad request: this server offers no UDP over Wisp (its udp.enabled is off)"));
    const id = this.#nextId++;
    const name = encoder.encode(host);
    const payload = new Uint8Array(3 + name.length);
    payload[0] = udp ? 2 : 1;
    new DataView(payload.buffer).setUint16(1, port, true);
    payload.set(name, 3);
    return new Promise((resolve, reject) => {
      const socket = new WispSocket(this, id, udp ? Infinity : this.#initialCredits, { resolve, reject });
      this.#streams.set(id, socket);
      this.#ws.send(packet(CONNECT, id, payload));
      // Without confirmation (another Wisp server) a socket is taken as open once asked for; a failure is its CLOSE.
      if (udp || !this.#confirms) socket.opened();
    });
  }

  /** @internal */
  send(type, id, payload) {
    this.#ws.send(packet(type, id, payload));
  }

  /** @internal */
  forget(id) {
    this.#streams.delete(id);
  }

  /** Closes every socket and the WebSocket. */
  close() {
    this.#why ??= { by: "you" };
    this.#ws.close(1000);
  }
}

/** A socket carried by a WispSession: the same shape as a Ws2sSocket (write, read, for await, close, closed, state). */
export class WispSocket {
  #session;
  #id;
  #credits;
  #waitingForCredit = [];
  #chunks = [];
  #readers = [];
  #open;
  #ended = false;
  #why = null;
  #closed;
  #resolveClosed;

  constructor(session, id, credits, open) {
    this.#session = session;
    this.#id = id;
    this.#credits = credits;
    this.#open = open;
    this.#closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  /** @internal The server says the socket is connected (its confirmation), or it is UDP. */
  opened() {
    const open = this.#open;
    this.#open = null;
    open?.resolve(this);
  }

  /** @internal The server's credits for this socket (it sets them: the protocol's rule); the first also confirms the open. */
  grant(credits) {
    this.#credits = credits;
    this.opened();
    while (this.#credits > 0 && this.#waitingForCredit.length > 0) this.#waitingForCredit.shift()();
  }

  /** @internal */
  deliver(chunk) {
    const reader = this.#readers.shift();
    if (reader) reader(chunk.slice());
    else this.#chunks.push(chunk.slice());
  }

  /** @internal The stream ended: the server's CLOSE `reason`, or the WebSocket went (`why`). */
  end(reason, why) {
    if (this.#open) {
      const open = this.#open;
      this.#open = null;
      open.reject(reason === null ? new Ws2sError(3, "the Wisp session closed") : errorFor(reason));
    }
    if (this.#ended) return;
    this.#ended = true;
    // The peer's end (0x02) or its connection failing (0x03) is the peer's; any other reason is ws2s's decision, in words.
    const error = reason === null ? null : errorFor(reason);
    this.#why ??= why ?? (reason === 0x02 ? { by: "peer", reason: error.message }
      : reason === 0x03 ? { by: "peer", reason: error.message, broken: true }
      : { by: "ws2s", code: error.code, reason: error.message });
    for (const reader of this.#readers.splice(0)) reader(null);
    for (const waiting of this.#waitingForCredit.splice(0)) waiting();
    this.#resolveClosed(this.#why);
  }

  /** "open", or "closed" once the stream is over. */
  get state() {
    return this.#ended ? "closed" : "open";
  }

  /** Resolves once the stream is over, with why (as Ws2sSocket.closed: by "peer", "ws2s", "network" or "you"). */
  get closed() {
    return this.#closed;
  }

  /**
   * Writes bytes or text (UTF-8) to the peer: one DATA (one datagram on UDP). Waits while the server has granted no
   * credit (backpressure), so a loop of awaited writes never outruns the peer.
   */
  async write(data) {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    while (!this.#ended && this.#credits <= 0) await new Promise((resolve) => this.#waitingForCredit.push(resolve));
    if (this.#ended) throw new Ws2sError(3, "illegal socket status, please connect again");
    this.#credits--;
    this.#session.send(DATA, this.#id, bytes);
    return "sent";
  }

  /** The next chunk from the peer (a whole datagram on UDP), or null once the stream has ended. */
  read() {
    if (this.#chunks.length > 0) return Promise.resolve(this.#chunks.shift());
    if (this.#ended) return Promise.resolve(null);
    return new Promise((resolve) => this.#readers.push(resolve));
  }

  async *[Symbol.asyncIterator]() {
    for (let chunk = await this.read(); chunk !== null; chunk = await this.read()) yield chunk;
  }

  /** Wisp has no half-close. */
  shutdown() {
    return Promise.reject(new Ws2sError(7, "bad request: a Wisp socket has no half-close (close it instead)"));
  }

  /** Closes this socket (the others and the WebSocket go on). */
  async close() {
    if (this.#ended) return;
    this.#session.send(CLOSE, this.#id, Uint8Array.of(0x02));
    this.#session.forget(this.#id);
    this.end(null, { by: "you" });
  }
}
