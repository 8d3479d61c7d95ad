// Types for ws2s.js 3 (see ws2s.js).

export class Ws2sError extends Error {
  /** The ws2s code: 2 connect failed, 3 no connection, 4 refused by policy, 5 closed, 6 ssh, 7 bad request, 8 TLS failed, 9 resume failed. */
  readonly code: number;
  /** For code 4 from connect(): the config keys that would allow the destination (see refusalHint). */
  readonly hint?: string;
  constructor(code: number, message: string, hint?: string);
}

/**
 * The WebSocket to the ws2s server did not open. The library asked the server why (GET /.ws2s/admission,
 * the token in a header): the message has its words, or what to check when it could not say.
 */
export class Ws2sOpenError extends Error {
  /** The ws:// or wss:// address that did not open. */
  readonly url: string;
  /** The HTTP status the server refuses this client with (401 token, 403 origin, 421 host name), when it said. */
  readonly status?: number;
  /** The server's words for that refusal, when it said. */
  readonly refusal?: string;
  constructor(url: string, message: string, status?: number, refusal?: string);
}

/**
 * The config keys that would allow a destination ws2s refused with code 4, from its message, as a
 * sentence; null when the message says what to do already or is not a code 4's.
 */
export function refusalHint(message: string, port?: number): string | null;

export class RedisError extends Error {}

/** A reply: RESP2 types (a value that is not UTF-8 as its bytes), and after HELLO 3 also maps, sets, booleans, doubles; integers past 2^53 as bigint. */
export type RedisReply = string | Uint8Array | number | bigint | boolean | null | RedisReply[] | Map<RedisReply, RedisReply> | Set<RedisReply>;

export interface SshOptions {
  host: string;
  port?: number;
  username?: string;
  password?: string;
  private_key?: string;
  private_key_password?: string;
}

/** Where a connect leads and how it gets there (the server's core calls it a route). */
export interface Route {
  host: string;
  port: number;
  /** Peer bytes as binary frames, writes as binary frames (needs ws2s for .NET). */
  binary?: boolean;
  ssh?: SshOptions;
  /** TLS to the destination from the first byte (needs ws2s for .NET); the server validates the certificate. */
  tls?: boolean;
  /** SNI and certificate name (default: host). */
  tlsServerName?: string;
  /** A UDP socket (when the server enables UDP): each write one datagram, each read one datagram. */
  udp?: boolean;
  /**
   * Outlive a lost WebSocket (needs ws2s for .NET with resume.graceSeconds above 0): the socket resumes by itself and
   * reads, writes and their promises see one unbroken stream. `true` for the defaults.
   */
  resumable?: boolean | ResumeOptions;
}

/** How a resumable socket comes back after its WebSocket is lost. */
export interface ResumeOptions {
  /** Give up after this long away (default 30000, the server's default grace): the socket ends as a lost connection would. */
  timeoutMs?: number;
  /** The wait after the first failed try (default 250), doubling up to maxDelayMs (default 5000); the first try is at once. */
  minDelayMs?: number;
  maxDelayMs?: number;
  /**
   * Acknowledge the peer's bytes as the app reads them (not as they arrive): the server, which reads the peer at most its
   * window (resume.maxBufferedBytes, 1 MiB) ahead of the acks, then holds the peer back while the app does not read.
   */
  ackOnRead?: boolean;
}

/** What a resume did (Ws2sSocket.onResume). */
export interface ResumeInfo {
  /** The tries it took (1: the first new WebSocket took the session over). */
  attempts: number;
  /** How long the socket was away, in milliseconds. */
  lostMs: number;
  /** The peer's bytes this socket had had: the server sends what follows them. */
  received: number;
  /** The bytes of this socket's writes the server had taken. */
  taken: number;
  /** The bytes this socket sent again (those it wrote from `taken` on, including the writes made while resuming). */
  resent: number;
  /** The requests sent again because their answers were lost ("shutdown", "ping"). */
  requests: string[];
}

/** @deprecated The earlier name of {@link Route}. */
export type Target = Route;

export interface WS2SOptions {
  /** A WebSocket constructor, where there is no global one. */
  WebSocket?: typeof WebSocket;
  /** An access token, sent as the `token.<token>` subprotocol. */
  token?: string;
  /** Reopen callback sockets that close unexpectedly, with exponential backoff. */
  reconnect?: { retries?: number; minDelayMs?: number; maxDelayMs?: number };
  /** A fetch function, where there is no global one: used to ask the server why it refused a session. */
  fetch?: typeof fetch;
}

/** The server's answer to a failed request, as ws2s.js 2.1.4 hands it to onError. */
export interface Ws2sResponse {
  success: boolean;
  code: number;
  message: string;
}

/** The WebSocket's error event; when the session did not open, with why (as the server says) in `message` and `error`. */
export type Ws2sErrorEvent = Event & { message?: string; error?: Ws2sOpenError };

/** The ws2s.js 2.1.4 socket. */
export interface CallbackSocket {
  onReady: () => void;
  onOpen: () => void;
  onRecv: (data: Uint8Array) => void;
  onClose: () => void;
  /** The server's response for a failed request, or the WebSocket's error event (which, when the session did not open, comes with why, then onClose). */
  onError: (error: Ws2sResponse | Ws2sErrorEvent) => void;
  connect(host: string, port: number, ssh_host?: string, ssh_port?: number, ssh_username?: string, ssh_password?: string,
    ssh_private_key?: string, ssh_private_key_password?: string, options?: { tls?: boolean; tlsServerName?: string }): void;
  /** Upgrades the open connection to TLS in place (STARTTLS); onError hears a failure (code 8). */
  startTls(tlsServerName?: string): void;
  send(data: string): void;
  sendb(data: Uint8Array): void;
  close(): void;
}

/**
 * The ws2s.js 2.1.4 Redis client, as 2.1.4 behaves. For typed replies (arrays, null, maps), use WS2S.redis().
 */
export interface CallbackRedisClient {
  /** The session to ws2s is open (before the connect to Redis). */
  onSocketReady: () => void;
  /** Connected to Redis (AUTH sent, if a password was given); after a reconnect, onReconnected instead. */
  onReady: () => void;
  /** Connected again after the connection was lost (AUTH sent again). */
  onReconnected: () => void;
  /** How often the client has connected again. */
  readonly reconnectCount: number;
  /** A string; an integer as a number; an array as 2.1.4's text: "1) a\n2) b", nested arrays indented 3 spaces. */
  onResponse: (reply: string | number) => void;
  /**
   * Redis's error words; "a null object is recevied form redis server" for nil; "an empty result is
   * recevied form redis server" for an empty array; "connection loss, max reconnect times reached" after 9
   * reconnects; or what the socket's onError got (the connection is then closed and opened again).
   */
  onError: (error: string | Ws2sResponse | Ws2sErrorEvent) => void;
  request(command: string): void;
  /** Ends the client (new in ws2s.js 3): no reconnect, no callback. */
  close(): void;
}

export class Ws2sSocket implements AsyncIterable<Uint8Array> {
  /** "resuming": a resumable socket whose WebSocket was lost, coming back (writes wait for it). */
  readonly state: "open" | "resuming" | "closed";
  /** Does it resume by itself? It asked to (`resumable`), and the server gave it a token. */
  readonly resumable: boolean;
  /** The WebSocket of a resumable socket was lost (its close code and reason): it is resuming. */
  onResuming: (lost: { code: number; reason: string }) => void;
  /** A resume is done: the socket is open again, nothing lost. */
  onResume: (resume: ResumeInfo) => void;
  /** Resolves once the session is over, with why (the peer, ws2s with its close code, the network, or you). */
  readonly closed: Promise<CloseReason>;
  request(request: object): Promise<string>;
  write(data: string | Uint8Array): Promise<string>;
  /** Upgrades the open connection to TLS in place (STARTTLS); rejects with code 8 if the handshake fails. */
  startTls(tlsServerName?: string): Promise<string>;
  /** The next chunk, or null once the peer closed; rejects with why when a resumable socket could not resume (code 9 refused, 5 not in time). */
  read(): Promise<Uint8Array | null>;
  shutdown(): Promise<string>;
  close(): Promise<void>;
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array>;
}

/** Why a connection ended. */
export type CloseReason =
  /** The peer closed the connection (FIN); `broken`: it broke instead (a reset, a network error). */
  | { by: "peer"; reason: string; broken?: true }
  | { by: "ws2s"; code: number; reason: string }
  /** `error`: a resumable socket that could not resume (code 9, the server refused; code 5, not back within timeoutMs). */
  | { by: "network"; code: 1006; reason: string; error?: Ws2sError }
  | { by: "you" };

/** A push: a pub/sub message, a MONITOR line, or another RESP3 push. */
export type RedisPush =
  | { kind: "message"; channel: string; message: string }
  | { kind: "pmessage"; pattern: string; channel: string; message: string }
  | { kind: "monitor"; line: string }
  | { kind: string; items: RedisReply[] };

export class RespPush {
  readonly items: RedisReply[];
}

export class RedisConnection {
  command(...words: (string | number | Uint8Array)[]): Promise<RedisReply>;
  request(line: string): Promise<RedisReply>;
  close(): Promise<void>;
  /** Pub/sub messages (SUBSCRIBE, PSUBSCRIBE) and MONITOR lines, never taken as another command's reply. */
  onPush: (push: RedisPush) => void;
  readonly state: "open" | "resuming" | "reconnecting" | "closed";
  /** Resolves once the connection is over for good (after any reconnect attempts). */
  readonly closed: Promise<CloseReason>;
  /** Called after an automatic reconnect. */
  onReconnect: () => void;
  /** A resumable connection lost its WebSocket and is resuming. */
  onResuming: (lost: { code: number; reason: string }) => void;
  /** A resumable connection resumed: the same Redis client, nothing lost. */
  onResume: (resume: ResumeInfo) => void;
}

export class WS2S {
  constructor(url: string, options?: WS2SOptions);
  newSocket(): CallbackSocket;
  newRedisCient(host: string, port: number, auth?: string, ssh_host?: string, ssh_port?: number, ssh_username?: string,
    ssh_password?: string, ssh_private_key?: string, ssh_private_key_password?: string): CallbackRedisClient;
  newRedisClient(host: string, port: number, auth?: string, ...ssh: (string | number | undefined)[]): CallbackRedisClient;
  /** Rejects with a Ws2sError (the server's code and words) or, when no session opened, a Ws2sOpenError. */
  connect(route: Route): Promise<Ws2sSocket>;
  /**
   * Many sockets over one WebSocket (Wisp, ws2s's /wisp/ endpoint or `path`). Rejects with a Ws2sOpenError when the
   * WebSocket does not open.
   */
  wisp(options?: { path?: string }): Promise<WispSession>;
  /** A refused AUTH closes the connection and rejects with Redis's error. */
  redis(target: { host: string; port: number; username?: string; password?: string; ssh?: SshOptions; tls?: boolean; tlsServerName?: string;
    /** Outlive a lost WebSocket: the same Redis connection, nothing lost (see Route.resumable); reconnect takes over if a resume fails. */
    resumable?: boolean | ResumeOptions;
    /** Reopen by itself when the connection ends (not when you close it), with backoff; AUTH, SELECT and subscriptions are restored. */
    reconnect?: { retries?: number; minDelayMs?: number; maxDelayMs?: number } }): Promise<RedisConnection>;
}

export class RespParser {
  feed(bytes: Uint8Array): (RedisReply | RedisError)[];
}

/** Like encodeCommand, for words that may be raw bytes. */
export function encodeCommandBytes(words: (string | number | Uint8Array)[]): Uint8Array;
export function encodeCommand(words: (string | number)[]): string;
/** Splits like redis-cli, with its \\xHH escapes: a word with bytes that are not text comes as a Uint8Array. */
export function splitCommandLine(line: string): (string | Uint8Array)[];

/** One WebSocket carrying many sockets (Wisp). */
export class WispSession {
  static open(url: string, options?: { WebSocket?: unknown; token?: string; whyNotOpen?: (url: string) => Promise<Error> }): Promise<WispSession>;
  /** Does the server offer UDP? */
  readonly udp: boolean;
  readonly state: "open" | "closed";
  readonly closed: Promise<CloseReason>;
  /**
   * Resolves once the server says the socket is connected; rejects with a Ws2sError (4 refused by policy, 2 unreachable,
   * refused, timed out or throttled, 7 invalid), the Wisp reason in its words.
   */
  connect(target: { host: string; port: number; udp?: boolean }): Promise<WispSocket>;
  /** Closes every socket and the WebSocket. */
  close(): void;
}

/** A socket carried by a WispSession: the shape of a Ws2sSocket (no half-close, no STARTTLS). */
export class WispSocket implements AsyncIterable<Uint8Array> {
  readonly state: "open" | "closed";
  readonly closed: Promise<CloseReason>;
  /** Waits while the server grants no credit (backpressure); a UDP write is one datagram. */
  write(data: string | Uint8Array): Promise<string>;
  read(): Promise<Uint8Array | null>;
  /** Rejects: Wisp has no half-close. */
  shutdown(): Promise<never>;
  /** Closes this socket; the others and the WebSocket go on. */
  close(): Promise<void>;
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array>;
}

// ---- Direct Sockets (WICG/direct-sockets) -------------------------------------------------------------------------

/** The standard's options; a bridged socket checks them as the browser would and leaves the server's socket to ws2s. */
export interface TCPSocketOptions {
  noDelay?: boolean;
  keepAliveDelay?: number;
  sendBufferSize?: number;
  receiveBufferSize?: number;
  dnsQueryType?: "ipv4" | "ipv6";
}

/** ws2s's own options, apart from the standard's names (a bridged socket only; over Wisp, `tls` is refused). */
export interface Ws2sTCPSocketOptions extends TCPSocketOptions {
  /** TLS to the peer, done by the server (tls.trustedCertificates, tls.pins). */
  tls?: boolean;
  tlsServerName?: string;
  /**
   * On by default over ws2s binary mode: the socket outlives a lost WebSocket, and acks as the app reads (an unread socket
   * holds its peer back, so memory stays bounded both sides). `false`: neither (needed for startTls()).
   */
  resumable?: boolean | ResumeOptions;
}

export interface TCPSocketOpenInfo {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<BufferSource>;
  remoteAddress: string;
  remotePort: number;
  /** The bridge does not tell the server's local address: undefined on a bridged socket. */
  localAddress?: string;
  localPort?: number;
}

export interface TCPSocket {
  /** Resolves once connected; rejects with a DOMException: NetworkError, NotAllowedError (the server's policy), its `cause` the Ws2sError. */
  readonly opened: Promise<TCPSocketOpenInfo>;
  /** Resolves once closed cleanly (close(), or both streams done); rejects with what failed. */
  readonly closed: Promise<void>;
  /** Rejects with an InvalidStateError while the readable or the writable is locked. */
  close(): Promise<void>;
}

export interface BridgedTCPSocket extends TCPSocket {
  /** ws2s's: upgrades the connection to TLS in place (a socket opened with `resumable: false`; not over Wisp). */
  startTls(tlsServerName?: string): Promise<void>;
}

export interface UDPSocketOptions {
  remoteAddress?: string;
  remotePort?: number;
  /** Bound mode: not bridged (opened rejects with a NotSupportedError). */
  localAddress?: string;
  localPort?: number;
  dnsQueryType?: "ipv4" | "ipv6";
  sendBufferSize?: number;
  receiveBufferSize?: number;
}

/** A datagram: in connected mode, `data` only. */
export interface UDPMessage {
  data: BufferSource;
  remoteAddress?: string;
  remotePort?: number;
}

export interface UDPSocketOpenInfo {
  readable: ReadableStream<UDPMessage & { data: Uint8Array }>;
  writable: WritableStream<UDPMessage>;
  remoteAddress?: string;
  remotePort?: number;
  localAddress?: string;
  localPort?: number;
}

export interface UDPSocket {
  readonly opened: Promise<UDPSocketOpenInfo>;
  readonly closed: Promise<void>;
  close(): Promise<void>;
}

export interface DirectSocketsOptions extends WS2SOptions {
  /**
   * "auto" (the default): the browser's own Direct Sockets when this page may use them, else Wisp when the server says it
   * offers it (its /.ws2s/admission answer), else ws2s binary mode. "native", "ws2s" or "wisp" to force one.
   */
  transport?: "auto" | "native" | "ws2s" | "wisp";
  /** Where the server serves Wisp, for a server that does not say (default "/wisp/"). */
  wispPath?: string;
}

export interface DirectSockets {
  TCPSocket: new (remoteAddress: string, remotePort: number, options?: Ws2sTCPSocketOptions) => BridgedTCPSocket;
  UDPSocket: new (options: UDPSocketOptions) => UDPSocket;
  /** The way chosen: "native", "ws2s" or "wisp" (auto asks the server once). */
  readonly transport: Promise<"native" | "ws2s" | "wisp">;
}

/** TCPSocket and UDPSocket of the Direct Sockets shape, through ws2s (or the browser's own): code written for them runs unchanged. */
export function directSockets(url: string, options?: DirectSocketsOptions): DirectSockets;
