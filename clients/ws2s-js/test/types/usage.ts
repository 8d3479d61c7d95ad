// Compiled (not run) by the types check: the declarations describe what the library does.
import { WS2S, Ws2sError, Ws2sOpenError, RedisError, RespParser, directSockets, encodeCommandBytes, refusalHint, splitCommandLine } from "ws2s-js";
import type { CloseReason, RedisPush, RedisReply, ResumeInfo, Ws2sResponse } from "ws2s-js";

export async function use(url: string): Promise<void> {
  const ws2s = new WS2S(url, { token: "t" });
  const socket = await ws2s.connect({ host: "example.com", port: 80, binary: true, tls: true, tlsServerName: "example.com" });
  await socket.write("HEAD / HTTP/1.0\r\n\r\n");
  await socket.startTls();
  for await (const chunk of socket) chunk.byteLength;
  const why: CloseReason = await socket.closed;
  if (why.by === "ws2s") why.code.toFixed();
  const redis = await ws2s.redis({ host: "127.0.0.1", port: 6379, username: "u", password: "p", reconnect: { retries: 3 } });
  redis.onPush = (push: RedisPush) => void push.kind;
  redis.onReconnect = () => {};
  const reply: RedisReply = await redis.command("GET", "k");
  if (reply instanceof Map) reply.size;
  const state: "open" | "resuming" | "reconnecting" | "closed" = redis.state;
  void state;
  const words = splitCommandLine('SET k "\\xff"');
  encodeCommandBytes(words);
  new RespParser().feed(new Uint8Array());
  const legacy = ws2s.newSocket();
  legacy.onReady = () => legacy.connect("127.0.0.1", 6379, undefined, undefined, undefined, undefined, undefined, undefined, { tls: true });
  legacy.startTls("name");
  legacy.onError = (error) => { if ("code" in error) error.code.toFixed(); else error.error?.status; };
  const client = ws2s.newRedisCient("127.0.0.1", 6379, "password");
  client.onSocketReady = () => {};
  client.onReconnected = () => client.reconnectCount.toFixed();
  client.onResponse = (reply: string | number) => void reply;
  client.onError = (error: string | Ws2sResponse | Event) => void error;
  const hint: string | null = refusalHint("ws2s refuse to connect target host: 10.0.0.1, cause that's a dangerous operation (private network 10.0.0.0/8)", 80);
  void hint;
  const wisp = await ws2s.wisp({ path: "/wisp/" });
  const many = await wisp.connect({ host: "127.0.0.1", port: 7, udp: wisp.udp });
  await many.write(new Uint8Array([1]));
  for await (const datagram of many) datagram.byteLength;
  const ended: CloseReason = await many.closed;
  void ended;
  await ws2s.connect({ host: "127.0.0.1", port: 53, udp: true });
  const lasting = await ws2s.connect({ host: "127.0.0.1", port: 7, resumable: { timeoutMs: 30_000, minDelayMs: 250, maxDelayMs: 5000 } });
  const now: "open" | "resuming" | "closed" = lasting.state;
  void now;
  if (lasting.resumable) lasting.onResume = (resume: ResumeInfo) => void (resume.resent + resume.taken + resume.received + resume.attempts + resume.lostMs + resume.requests.length);
  lasting.onResuming = (lost) => void lost.code.toFixed();
  const over: CloseReason = await lasting.closed;
  if (over.by === "network" && over.error) over.error.code.toFixed();
  const resumableRedis = await ws2s.redis({ host: "127.0.0.1", port: 6379, resumable: true });
  resumableRedis.onResume = (resume) => void resume.resent;
  resumableRedis.onResuming = () => {};
  wisp.close();
  const { TCPSocket, UDPSocket, transport } = directSockets(url, { token: "t", transport: "auto" });
  const way: "native" | "ws2s" | "wisp" = await transport;
  void way;
  const tcp = new TCPSocket("127.0.0.1", 6379, { noDelay: true, keepAliveDelay: 1000, tls: true, tlsServerName: "redis", resumable: false });
  const { readable, writable, remoteAddress, remotePort } = await tcp.opened;
  const byob = readable.getReader({ mode: "byob" });
  const { value } = await byob.read(new Uint8Array(16));
  value?.byteLength;
  byob.releaseLock();
  const writer = writable.getWriter();
  await writer.write(new Uint8Array([1]));
  await writer.write(new ArrayBuffer(1));
  writer.releaseLock();
  remoteAddress.length + remotePort;
  await tcp.startTls("redis");
  await tcp.close();
  await tcp.closed;
  const udp = new UDPSocket({ remoteAddress: "127.0.0.1", remotePort: 53 });
  const datagrams = await udp.opened;
  await datagrams.writable.getWriter().write({ data: new Uint8Array([1]) });
  const { value: message } = await datagrams.readable.getReader().read();
  message?.data.byteLength;
  try { await redis.close(); } catch (e) {
    if (e instanceof Ws2sError) { e.code.toFixed(); e.hint?.length; }
    if (e instanceof Ws2sOpenError) { e.url.length; e.status?.toFixed(); e.refusal?.length; }
    if (e instanceof RedisError) e.message;
  }
}
