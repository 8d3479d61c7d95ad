// The Direct Sockets API (WICG/direct-sockets: TCPSocket, UDPSocket in connected mode) for any page and for Node: the
// browser's own where it has it and the page may use it, else carried by ws2s (binary mode, one WebSocket per socket)
// or by Wisp (many sockets over one WebSocket) when the server offers it. Code written against the standard shape runs
// unchanged on any of the three: `const { TCPSocket, UDPSocket } = directSockets("wss://ws2s.example/")`.

import { Ws2sError } from "./errors.js";
import { WS2S, admissionQuestion } from "./ws2s.js";

const TRANSPORTS = ["auto", "native", "ws2s", "wisp"];
/** A TCP write goes in pieces of at most this (with Wisp's 5-byte header, 64 KiB a packet): under any default server limit. */
const WRITE_PIECE_BYTES = 64 * 1024 - 5;
/** The largest UDP datagram over IPv4 (65,535 less the IP and UDP headers). */
const MAX_DATAGRAM_BYTES = 65_507;
/** The bytes of datagrams a UDP socket keeps while nobody reads (its `receiveBufferSize` when given): past it, they are dropped. */
const UDP_RECEIVE_BUFFER_BYTES = 1024 * 1024;
/** Marks the classes directSockets makes, so that a page that installs them as globals is not taken for a native one. */
const BRIDGED = Symbol.for("ws2s.directSockets");

/**
 * The error a Direct Sockets promise rejects with, from what ws2s says: a DOMException of the explainer's names
 * (NotAllowedError for a destination the server's policy refuses, NetworkError for anything the network or the peer
 * did), with the ws2s error as its `cause`.
 */
function domError(error) {
  if (error instanceof DOMException || error instanceof TypeError) return error;
  const name = error instanceof Ws2sError && error.code === 4 ? "NotAllowedError" : "NetworkError";
  const exception = new DOMException(String(error?.message ?? error), name);
  Object.defineProperty(exception, "cause", { value: error, configurable: true });
  return exception;
}

/** A WebIDL `[EnforceRange] unsigned short/long`: a finite integer within 0..max, else a TypeError. */
function enforceRange(value, max, name) {
  const number = Number(value);
  if (!Number.isFinite(number) || Math.trunc(number) < 0 || Math.trunc(number) > max)
    throw new TypeError(`${name}: ${value} is outside 0..${max}`);
  return Math.trunc(number);
}

/** Checks the standard options (the bridge sets none of them on the server's socket; they are checked as the browser would). */
function checkOptions(options, names) {
  // WebIDL: an optional dictionary may be undefined or null (both are {}); anything else must be an object.
  if (options !== null && options !== undefined && typeof options !== "object") throw new TypeError("options must be an object");
  const given = options ?? {};
  for (const [name, max] of names) if (given[name] !== undefined) enforceRange(given[name], max, name);
  if (given.dnsQueryType !== undefined && given.dnsQueryType !== "ipv4" && given.dnsQueryType !== "ipv6")
    throw new TypeError(`dnsQueryType: "${given.dnsQueryType}" is not "ipv4" or "ipv6"`);
  return given;
}

/** Did a socket end as a stream ends (the peer's FIN, or this side's close), not as a failure? */
function cleanEnd(why) {
  return why.by === "you" || (why.by === "peer" && !why.broken);
}

/** Why a ws2s or Wisp socket that did not end cleanly failed, as an error. */
function failure(why) {
  if (why.by === "peer") return new Ws2sError(5, why.reason);
  return why.error ?? new Ws2sError(why.code === 1006 ? 5 : 3, `the ws2s session ended: ${why.code}${why.reason ? ` ${why.reason}` : ""}`);
}

/** A BufferSource as a Uint8Array of its own (the writer may reuse its buffer once the write resolves), else a TypeError. */
function ownBytes(chunk) {
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk.slice(0));
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength).slice();
  throw new TypeError("a socket's writable takes a BufferSource (an ArrayBuffer, a typed array or a DataView)");
}

/**
 * One socket's streams over a ws2s or Wisp socket (`read`, `write`, `shutdown`, `close`, `closed`): opened, closed and
 * close() with the explainer's rules. `datagrams`: UDP (messages `{ data }`); else a byte stream with BYOB reads.
 */
class Streams {
  readable;
  writable;
  #socket;
  /** The streams' controllers, to error them when the socket fails (whether or not the app holds a reader or a writer). */
  #readController;
  #writeController;
  #readDone = false;
  #writeDone = false;
  #settled = false;
  #resolveClosed;
  #rejectClosed;

  /** @param {{ receiveBufferSize: number } | null} datagrams UDP, and how many bytes of datagrams it keeps unread; null: TCP */
  constructor(socket, datagrams, closed) {
    this.#socket = socket;
    [this.#resolveClosed, this.#rejectClosed] = closed;
    this.readable = datagrams ? this.#messages(datagrams.receiveBufferSize) : this.#bytes();
    this.writable = this.#writable(Boolean(datagrams));
    // A session that ws2s or the network ends, or a connection the peer broke, fails the socket at once, read or not; the
    // peer's clean end (FIN) waits for the reader.
    socket.closed.then((why) => {
      if (!cleanEnd(why)) this.#fail(failure(why));
    });
  }

  /** The next chunk, or null at the end; an end the peer or this side did not make is an error (the network's, or ws2s's). */
  async #next() {
    const chunk = await this.#socket.read();
    if (chunk !== null) return chunk;
    const why = await this.#socket.closed;
    if (cleanEnd(why)) return null;
    throw failure(why);
  }

  /** A byte stream that asks the socket for more only when the app reads: while nobody reads, nothing more is fetched. */
  #bytes() {
    let rest = null;
    return new ReadableStream({
      type: "bytes",
      start: (controller) => void (this.#readController = controller),
      pull: async (controller) => {
        let chunk = rest;
        rest = null;
        try {
          chunk ??= await this.#next();
        } catch (error) {
          this.#fail(error);
          return;
        }
        const request = controller.byobRequest;
        if (chunk === null) {
          controller.close();
          request?.respond(0);
          this.#readEnded();
          return;
        }
        if (request) {
          const view = request.view;
          const length = Math.min(chunk.length, view.byteLength);
          new Uint8Array(view.buffer, view.byteOffset, length).set(chunk.subarray(0, length));
          if (length < chunk.length) rest = chunk.subarray(length);
          request.respond(length);
        } else controller.enqueue(chunk);
      },
      cancel: () => this.#readCancelled(),
    }, { highWaterMark: 0 });
  }

  /**
   * UDP: one message `{ data }` per datagram, taken as they come into the stream's queue, which holds at most
   * `receiveBufferSize` bytes: a datagram that does not fit is dropped, as a socket's full receive buffer drops it.
   */
  #messages(receiveBufferSize) {
    let cancelled = false;
    return new ReadableStream({
      start: (controller) => {
        this.#readController = controller;
        (async () => {
          try {
            for (let chunk = await this.#next(); chunk !== null; chunk = await this.#next())
              if (!cancelled && controller.desiredSize >= chunk.length) controller.enqueue({ data: chunk });
          } catch (error) {
            this.#fail(error);
            return;
          }
          if (!cancelled) controller.close();
          this.#readEnded();
        })();
      },
      cancel: () => {
        cancelled = true; // what still comes is read (by the loop above) and dropped
        this.#readEnded();
      },
    }, { highWaterMark: receiveBufferSize, size: (message) => message.data.length });
  }

  #writable(datagrams) {
    return new WritableStream({
      start: (controller) => void (this.#writeController = controller),
      write: async (chunk) => {
        let bytes;
        if (datagrams) {
          if (chunk === null || typeof chunk !== "object" || chunk.data === undefined) throw new TypeError("a UDP socket's writable takes messages { data }");
          if (chunk.remoteAddress !== undefined || chunk.remotePort !== undefined)
            throw new TypeError("a connected UDP socket sends to its own remote address: a message names no remoteAddress or remotePort");
          bytes = ownBytes(chunk.data);
          if (bytes.length > MAX_DATAGRAM_BYTES) throw new TypeError(`a UDP datagram holds at most ${MAX_DATAGRAM_BYTES} bytes; this one has ${bytes.length}`);
        } else bytes = ownBytes(chunk);
        if (this.#socket.state === "closed" && (await this.#socket.closed).by === "peer") {
          // The peer closed (ws2s ends the session then): this stream errors, the socket is still cleanly closed.
          this.#writeEnded();
          throw new DOMException("the peer closed the connection", "NetworkError");
        }
        try {
          // A datagram whole; a stream's bytes in pieces (one WebSocket message or Wisp packet each, well within the server's
          // limits.maxMessageBytes), each waiting its turn, so that a write of any size goes as a native socket's would.
          if (datagrams) await this.#socket.write(bytes);
          else for (let at = 0; at < bytes.length; at += WRITE_PIECE_BYTES) await this.#socket.write(bytes.subarray(at, at + WRITE_PIECE_BYTES));
        } catch (error) {
          throw this.#fail(error);
        }
      },
      // FIN to the peer (reading goes on); over Wisp, which has no half-close, nothing is sent until the socket closes.
      close: async () => {
        if (!datagrams && this.#socket.state !== "closed") {
          try {
            await this.#socket.shutdown();
          } catch (error) {
            if (!(error instanceof Ws2sError && error.code === 7)) throw this.#fail(error);
          }
        }
        this.#writeEnded();
      },
      abort: () => this.#writeEnded(),
    });
  }

  #readEnded() {
    this.#readDone = true;
    this.#maybeClosed();
  }

  /** The app cancelled reading: what still comes is read and dropped, so the peer is not held back for a reader that left. */
  #readCancelled() {
    this.#readDone = true;
    (async () => {
      try {
        while ((await this.#socket.read()) !== null);
      } catch { /* ended */ }
    })();
    this.#maybeClosed();
  }

  #writeEnded() {
    this.#writeDone = true;
    this.#maybeClosed();
  }

  /** Both streams are done: the socket closes, and `closed` resolves. */
  #maybeClosed() {
    if (this.#readDone && this.#writeDone) this.shut();
  }

  /** Closes the socket (close(), or both streams done): `closed` resolves. */
  async shut() {
    if (this.#settled) return;
    this.#settled = true;
    await this.#socket.close();
    this.#resolveClosed();
  }

  /** The socket failed: both streams error with it, `closed` rejects with it. Returns the DOMException. */
  #fail(error) {
    const exception = domError(error);
    if (this.#settled) return exception;
    this.#settled = true;
    this.#readController.error(exception);
    this.#writeController.error(exception);
    this.#socket.close().catch(() => {});
    this.#rejectClosed(exception);
    return exception;
  }
}

/**
 * How a bridge reaches the server: the ws2s client, and (Wisp, when it is the way) the one Wisp session its open sockets
 * share, opened for the first and closed after the last.
 */
class Bridge {
  #ws2s;
  #choice;
  /** The Wisp session, `{ session: Promise<WispSession>, users }`, while a socket uses it (or is opening on it). */
  #wisp = null;
  #transport = null;
  #url;
  #options;
  /** Where the server says it serves Wisp (auto), once asked. */
  #wispPath = null;

  constructor(url, options, choice) {
    this.#ws2s = new WS2S(url, options);
    this.#choice = choice;
    this.#url = url;
    this.#options = options;
  }

  /** "ws2s" or "wisp": forced, or (auto) Wisp when the server says it offers it (its /.ws2s/admission answer), else ws2s. */
  transport() {
    this.#transport ??= this.#choice === "auto" ? this.#offersWisp().then((path) => (path ? "wisp" : "ws2s")) : Promise.resolve(this.#choice);
    return this.#transport;
  }

  async #offersWisp() {
    const fetchImpl = this.#options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== "function") return null;
    try {
      // Asked as ws2s.js asks why a session was refused: the token in a header, to this server only.
      const { question, headers } = admissionQuestion(this.#url, this.#options.token);
      const response = await fetchImpl(question, { headers, cache: "no-store", redirect: "error", signal: AbortSignal.timeout?.(5000) });
      const answer = await response.json();
      this.#wispPath = answer?.status === 200 && typeof answer.wisp === "string" ? answer.wisp : null;
      return this.#wispPath;
    } catch {
      return null; // not ws2sd (a library host), or it cannot be asked: ws2s's own protocol then
    }
  }

  /** The Wisp session in use, or a new one (none yet, or the last one ended). */
  #wispSession() {
    if (this.#wisp?.ended) this.#wisp = null;
    if (!this.#wisp) {
      const wisp = { session: this.#ws2s.wisp({ path: this.#options.wispPath ?? this.#wispPath ?? "/wisp/" }), users: 0, ended: false };
      wisp.session.then((session) => session.closed.then(() => (wisp.ended = true)), () => (wisp.ended = true));
      this.#wisp = wisp;
    }
    return this.#wisp;
  }

  /** A socket on `wisp` closed (or did not open): the last one closes the session's WebSocket. */
  #leave(wisp) {
    if (--wisp.users > 0) return;
    wisp.ended = true;
    if (this.#wisp === wisp) this.#wisp = null;
    wisp.session.then((session) => session.close(), () => {});
  }

  /** A connected socket (a Ws2sSocket or a WispSocket) to host:port. */
  async connect({ host, port, udp, tls, tlsServerName, resumable, bound }) {
    if (bound) throw new DOMException("a UDPSocket in bound mode (localAddress) is not bridged: ws2s connects to one remote address", "NotSupportedError");
    // Chosen (auto), Wisp carries the sockets that ask for nothing only ws2s has (tls, a resumable socket's options).
    const wantsWs2s = this.#choice === "auto" && (tls || (resumable !== undefined && resumable !== false));
    if ((await this.transport()) === "wisp" && !wantsWs2s) {
      if (tls) throw new TypeError("tls is ws2s's: a socket carried by Wisp cannot ask for it (transport: \"ws2s\")");
      const wisp = this.#wispSession();
      wisp.users++;
      try {
        const socket = await (await wisp.session).connect({ host, port, udp });
        socket.closed.then(() => this.#leave(wisp));
        return socket;
      } catch (error) {
        this.#leave(wisp);
        throw error;
      }
    }
    return this.#ws2s.connect({ host, port, udp, binary: true, tls, tlsServerName,
      resumable: udp || resumable === false ? undefined : { ...(typeof resumable === "object" ? resumable : {}), ackOnRead: true } });
  }
}

/** Is the browser's own Direct Sockets API here, and may this page use it (permissions policy `direct-sockets`)? */
function nativeAvailable() {
  const native = globalThis.TCPSocket;
  if (typeof native !== "function" || native[BRIDGED]) return false;
  const policy = globalThis.document?.permissionsPolicy ?? globalThis.document?.featurePolicy;
  return policy?.allowsFeature ? policy.allowsFeature("direct-sockets") : true;
}

/**
 * `TCPSocket` and `UDPSocket` classes of the Direct Sockets shape. `transport`: "auto" (the default: the browser's own
 * when the page may use it, else Wisp when the server offers it, else ws2s), "native", "ws2s" or "wisp". Other options
 * are the WS2S client's (`token`, `WebSocket`), plus `wispPath` (where the server serves Wisp, for a server that does not say).
 * @param {string} url ws:// or wss:// address of the ws2s server
 * @param {{ transport?: "auto" | "native" | "ws2s" | "wisp", token?: string, WebSocket?: Function, wispPath?: string }} [options]
 */
export function directSockets(url, options = {}) {
  const choice = options.transport ?? "auto";
  if (!TRANSPORTS.includes(choice)) throw new TypeError(`transport: "${choice}" is not one of ${TRANSPORTS.join(", ")}`);
  if (choice === "native" || (choice === "auto" && nativeAvailable())) {
    if (!nativeAvailable())
      throw new DOMException("this page has no Direct Sockets of its own (Chromium gives them to Isolated Web Apps): use transport \"auto\"", "NotSupportedError");
    return { TCPSocket: globalThis.TCPSocket, UDPSocket: globalThis.UDPSocket, transport: Promise.resolve("native") };
  }
  const bridge = new Bridge(url, options, choice);

  /** What both socket classes share: opened, closed, close(). */
  class BridgedSocket {
    #opened;
    #closed;
    #streams = null;
    #connection = null;

    /** @param {(connection: any) => object} info the open info, given the connected socket and its streams */
    constructor(target, info) {
      let closedHands;
      this.#closed = new Promise((resolve, reject) => (closedHands = [resolve, reject]));
      this.#closed.catch(() => {}); // a failure the app does not ask about is not an unhandled rejection
      this.#opened = (async () => {
        try {
          this.#connection = await bridge.connect(target);
        } catch (error) {
          const exception = domError(error);
          closedHands[1](exception);
          throw exception;
        }
        this.#streams = new Streams(this.#connection, target.udp ? { receiveBufferSize: target.receiveBufferSize } : null, closedHands);
        return info(this.#streams);
      })();
      this.#opened.catch(() => {});
    }

    /** Resolves with `{ readable, writable, remoteAddress, remotePort, localAddress, localPort }` once connected. */
    get opened() {
      return this.#opened;
    }

    /** Resolves once the socket has closed cleanly (close(), or both streams done); rejects with what failed. */
    get closed() {
      return this.#closed;
    }

    /** Closes the socket: rejects with an InvalidStateError while its readable or writable is locked (release them first). */
    async close() {
      try {
        await this.#opened;
      } catch {
        return; // never opened: nothing to close
      }
      const { readable, writable } = this.#streams;
      if (readable.locked || writable.locked)
        throw new DOMException("close() while the readable or the writable is locked: release the reader and the writer first", "InvalidStateError");
      readable.cancel().catch(() => {});
      writable.abort().catch(() => {});
      await this.#streams.shut();
      await this.#closed.catch(() => {});
    }

    /** @internal the ws2s or Wisp socket, once open */
    get connection() {
      return this.#connection;
    }
  }

  class TCPSocket extends BridgedSocket {
    static [BRIDGED] = true;

    /**
     * @param {string} remoteAddress a host name or an IP address
     * @param {number} remotePort
     * @param {{ noDelay?: boolean, keepAliveDelay?: number, sendBufferSize?: number, receiveBufferSize?: number,
     *   dnsQueryType?: "ipv4" | "ipv6", tls?: boolean, tlsServerName?: string, resumable?: boolean | object }} [options]
     *   (`tls`, `tlsServerName`, `resumable` are ws2s's, not the standard's: TLS to the peer done by the server, and
     *   whether the socket outlives a lost WebSocket — on by default, it also bounds what an unread socket holds)
     */
    constructor(remoteAddress, remotePort, options) {
      if (arguments.length < 2) throw new TypeError("TCPSocket takes a remoteAddress and a remotePort");
      const given = checkOptions(options, [["keepAliveDelay", 0xffffffff], ["sendBufferSize", 0xffffffff], ["receiveBufferSize", 0xffffffff]]);
      const host = String(remoteAddress);
      const port = enforceRange(remotePort, 0xffff, "remotePort");
      super({ host, port, tls: Boolean(given.tls), tlsServerName: given.tlsServerName, resumable: given.resumable },
        ({ readable, writable }) => ({ readable, writable, remoteAddress: host, remotePort: port, localAddress: undefined, localPort: undefined }));
    }

    /**
     * ws2s's, not the standard's: upgrades the connection to TLS in place (after the protocol's own STARTTLS and its
     * go-ahead). A socket opened with `resumable: false` only (an answer lost with a WebSocket could not be repeated).
     */
    async startTls(tlsServerName) {
      await this.opened;
      if (typeof this.connection.startTls !== "function") throw new DOMException("startTls() is ws2s's: a socket carried by Wisp has none", "NotSupportedError");
      try {
        await this.connection.startTls(tlsServerName);
      } catch (error) {
        throw domError(error);
      }
    }
  }

  class UDPSocket extends BridgedSocket {
    static [BRIDGED] = true;

    /**
     * Connected mode: `{ remoteAddress, remotePort }`; each message `{ data }` is one datagram; `receiveBufferSize` (default
     * 1 MiB) bounds the datagrams kept unread, the rest dropped. Bound mode
     * (`localAddress`) is not bridged: opened rejects with a NotSupportedError.
     * @param {{ remoteAddress?: string, remotePort?: number, localAddress?: string, localPort?: number,
     *   dnsQueryType?: "ipv4" | "ipv6", sendBufferSize?: number, receiveBufferSize?: number }} options
     */
    constructor(options) {
      if (options === undefined || options === null || typeof options !== "object") throw new TypeError("UDPSocket takes options { remoteAddress, remotePort }");
      const given = checkOptions(options, [["remotePort", 0xffff], ["localPort", 0xffff], ["sendBufferSize", 0xffffffff], ["receiveBufferSize", 0xffffffff]]);
      const connected = given.remoteAddress !== undefined || given.remotePort !== undefined;
      const bound = given.localAddress !== undefined || given.localPort !== undefined;
      if (connected && bound) throw new TypeError("remoteAddress/remotePort and localAddress/localPort cannot be given together");
      if (connected && (given.remoteAddress === undefined || given.remotePort === undefined))
        throw new TypeError("connected mode takes both remoteAddress and remotePort");
      if (!connected && !bound) throw new TypeError("UDPSocket takes remoteAddress and remotePort (connected mode), or localAddress (bound mode)");
      const host = connected ? String(given.remoteAddress) : null;
      const port = connected ? enforceRange(given.remotePort, 0xffff, "remotePort") : null;
      const receiveBufferSize = given.receiveBufferSize === undefined ? UDP_RECEIVE_BUFFER_BYTES : enforceRange(given.receiveBufferSize, 0xffffffff, "receiveBufferSize");
      super(connected ? { host, port, udp: true, receiveBufferSize } : { bound: true },
        ({ readable, writable }) => ({ readable, writable, remoteAddress: host, remotePort: port, localAddress: undefined, localPort: undefined }));
    }
  }

  return { TCPSocket, UDPSocket, get transport() { return bridge.transport(); } };
}
