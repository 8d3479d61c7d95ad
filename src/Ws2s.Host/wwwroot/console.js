// The ws2s web console: a socket tab and a Redis tab, built on ws2s.js (served beside it as lib/).
import { WS2S, Ws2sError, Ws2sOpenError, RedisError } from "./lib/ws2s.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const serverUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/`;
$("server").textContent = `server ${serverUrl}`;

// The access token: typed in the Token field (kept for this tab only), never left in the address bar.
$("token").value = params.get("token") ?? sessionStorage.getItem("ws2s-token") ?? "";
if (params.has("token")) {
  params.delete("token");
  window.history.replaceState(null, "", location.pathname + (params.size ? `?${params}` : ""));
}
$("token").addEventListener("change", () => sessionStorage.setItem("ws2s-token", $("token").value));
sessionStorage.setItem("ws2s-token", $("token").value);
const client = () => new WS2S(serverUrl, $("token").value ? { token: $("token").value } : {});

/**
 * A failed connect in words: what ws2s said, or, when no session opened at all, why the server refused the
 * page (ws2s.js asks the server, since the WebSocket API hides the HTTP status) and what to do about it.
 */
function explainConnect(error) {
  if (error instanceof Ws2sOpenError && error.refusal !== undefined) {
    const hint = error.status === 401 ? " Enter the access token in the Token field." : "";
    return `The server refused this page: ${error.refusal} (HTTP ${error.status}).${hint}`;
  }
  return explain(error);
}

// Tabs (the ARIA tabs pattern: one tab in the Tab order, arrow keys, Home and End move between them).
const tabs = [...document.querySelectorAll("[role=tab]")];
function select(tab) {
  for (const other of tabs) {
    other.setAttribute("aria-selected", String(other === tab));
    other.tabIndex = other === tab ? 0 : -1;
    $(other.dataset.panel).hidden = other !== tab;
  }
}
for (const tab of tabs) {
  tab.addEventListener("click", () => select(tab));
  tab.addEventListener("keydown", (event) => {
    const at = tabs.indexOf(tab);
    const next = { ArrowRight: tabs[(at + 1) % tabs.length], ArrowLeft: tabs[(at - 1 + tabs.length) % tabs.length], Home: tabs[0], End: tabs.at(-1) }[event.key];
    if (!next) return;
    event.preventDefault();
    select(next);
    next.focus();
  });
}

const time = () => new Date().toLocaleTimeString([], { hour12: false }) + "." + String(new Date().getMilliseconds()).padStart(3, "0");

function logLine(list, className, content) {
  // Follow new lines only when already at the bottom: someone reading further up keeps their place.
  const following = list.scrollHeight - list.scrollTop - list.clientHeight < 24;
  const item = document.createElement("li");
  item.className = className;
  const stamp = document.createElement("time");
  stamp.textContent = time();
  item.append(stamp, content);
  list.append(item);
  if (following) list.scrollTop = list.scrollHeight;
  return item;
}

for (const [button, log] of [["socket-clear", "socket-log"], ["redis-clear", "redis-output"]])
  $(button).addEventListener("click", () => $(log).replaceChildren());

/** An error in plain words: what ws2s said, with its code (and for a refused destination, the config keys that would allow it), or what the browser said. */
function explain(error) {
  if (error instanceof Ws2sError) {
    const what = { 2: "Could not connect", 3: "Not connected", 4: "Refused by the server's policy", 5: "Connection closed",
      6: "SSH tunnel failed", 7: "Bad request", 8: "Connection not secure", 9: "Could not resume" }[error.code] ?? "Error";
    return `${what}: ${error.message} (code ${error.code})${error.hint ? `. ${error.hint}` : ""}`;
  }
  if (error instanceof RedisError) return error.message;
  return error?.message ?? String(error);
}

function setStatus(element, text, kind = "") {
  element.textContent = text;
  element.className = `status ${kind}`;
}

/**
 * A resumable connection's resumes in the tab's status and log: "resuming…" while its WebSocket is away, then
 * "reconnected, nothing lost" (ws2s.js sent again what the server had not taken, and the server what the page had not had).
 */
function resumeNotes(connection, status, log, connected) {
  connection.onResuming = ({ code }) => {
    setStatus(status, `Lost the connection to the ws2s server (${code}): reconnecting…`, "error");
    logLine(log, "note", `connection to the ws2s server lost (${code}): reconnecting`);
  };
  connection.onResume = ({ lostMs, resent }) => {
    setStatus(status, connected, "ok");
    logLine(log, "note", `reconnected, nothing lost (away ${(lostMs / 1000).toFixed(1)} s${resent ? `; ${resent} bytes sent again` : ""})`);
  };
}

// ---- Socket tab -------------------------------------------------------------------------------

let socket = null;
// Streaming: a character split across reads (UTF-8's bytes in two recv data messages) is kept whole.
let decoder = new TextDecoder();
const hex = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(" ");
const show = (bytes) => ($("socket-mode").value === "hex" ? hex(bytes) : decoder.decode(bytes, { stream: true }));

// The \r\n option means nothing for hex input.
$("socket-mode").addEventListener("change", () => ($("socket-newline").disabled = $("socket-mode").value === "hex"));

// The page's one Wisp connection (opened the first time a socket asks for it, again once it has closed).
let wisp = null;
async function wispSession() {
  if (!wisp || wisp.state === "closed") wisp = await client().wisp();
  return wisp;
}

// TLS is ws2s's own handshake: not for UDP, and not over Wisp (whose streams carry what the page sends as it is).
function socketOptions() {
  const plainOnly = $("socket-udp").checked || $("socket-via").value === "wisp";
  $("socket-tls").disabled = plainOnly;
  if (plainOnly) $("socket-tls").checked = false;
}
for (const id of ["socket-udp", "socket-via"]) $(id).addEventListener("change", socketOptions);
socketOptions();

function socketConnected(connected) {
  for (const id of ["socket-input", "socket-send", "socket-close"]) $(id).disabled = !connected;
  $("socket-connect").disabled = connected;
}

$("socket-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const host = $("socket-host").value.trim();
  const port = Number($("socket-port").value);
  const tls = $("socket-tls").checked;
  const udp = $("socket-udp").checked;
  const viaWisp = $("socket-via").value === "wisp";
  const over = (tls ? " over TLS" : "") + (udp ? " (UDP)" : "") + (viaWisp ? " via Wisp" : "");
  setStatus($("socket-status"), `Connecting to ${host}:${port}${over}…`);
  $("socket-connect").disabled = true;
  try {
    // A TCP socket of its own resumes when its WebSocket is lost (a server that offers it keeps the session meanwhile).
    socket = viaWisp ? await (await wispSession()).connect({ host, port, udp })
      : await client().connect({ host, port, binary: true, tls, udp, resumable: !udp });
  } catch (error) {
    const words = explainConnect(error);
    setStatus($("socket-status"), words, "error");
    logLine($("socket-log"), "error", words);
    $("socket-connect").disabled = false;
    return;
  }
  setStatus($("socket-status"), `Connected to ${host}:${port}${over}.`, "ok");
  logLine($("socket-log"), "note", `connected to ${host}:${port}${over}`);
  socketConnected(true);
  decoder = new TextDecoder();
  $("socket-input").focus();
  const current = socket;
  resumeNotes(current, $("socket-status"), $("socket-log"), `Connected to ${host}:${port}${over}.`);
  try {
    for await (const chunk of current) {
      const text = show(chunk);
      if (text) logLine($("socket-log"), "received", text);
    }
  } catch { /* it could not resume: `closed` says why */ }
  if (socket === current) {
    const why = await current.closed;
    const [words, kind] = why.by === "peer" ? ["The peer closed the connection.", ""] : ended(why);
    setStatus($("socket-status"), words, kind);
    logLine($("socket-log"), "note", why.by === "peer" ? "connection closed by peer" : words);
    socket = null;
    socketConnected(false);
  }
});

$("socket-close").addEventListener("click", async () => {
  const closing = socket;
  socket = null;
  socketConnected(false);
  await closing?.close();
  setStatus($("socket-status"), "Closed.");
  logLine($("socket-log"), "note", "closed");
});

$("socket-send-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("socket-input").value;
  let bytes;
  if ($("socket-mode").value === "hex") {
    // Bytes as hex pairs, spaces and commas between them allowed; anything else is refused, not sent as 0 bytes.
    if (/[^0-9a-f\s,]/i.test(input)) return setStatus($("socket-status"), "Hex input takes only the digits 0-9 and a-f (e.g. 48 65 6c 6c 6f).", "error");
    const digits = input.replace(/[\s,]/g, "");
    if (digits.length === 0) return setStatus($("socket-status"), "Nothing to send: type bytes as hex, e.g. 48 65 6c 6c 6f.", "error");
    if (digits.length % 2 !== 0) return setStatus($("socket-status"), "Hex needs two digits per byte.", "error");
    bytes = new Uint8Array(digits.match(/../g).map((h) => parseInt(h, 16)));
  } else {
    bytes = new TextEncoder().encode(input + ($("socket-newline").checked ? "\r\n" : ""));
  }
  try {
    await socket.write(bytes);
    logLine($("socket-log"), "sent", $("socket-mode").value === "hex" ? hex(bytes) : new TextDecoder().decode(bytes));
    $("socket-input").value = "";
    // A good send clears an earlier input error.
    if ($("socket-status").classList.contains("error")) setStatus($("socket-status"), "Connected.", "ok");
  } catch (error) {
    setStatus($("socket-status"), explain(error), "error");
  }
});

// ---- Redis tab --------------------------------------------------------------------------------

let redis = null;
const commandHistory = [];
let historyAt = 0;
/** What was being typed before ↑ went into the history: ↓ past the newest entry brings it back. */
let draft = "";

/** Strings longer than this are shown cut, with their size and "show all" (a 5 MB value must not freeze the page). */
const SHOWN_CHARS = 4096;

/** A reply as nested elements: strings quoted, integers marked, arrays as lists, nil and errors distinct. */
function render(reply) {
  const span = (className, text) => Object.assign(document.createElement("span"), { className, textContent: text });
  if (typeof reply === "string" && reply.length > SHOWN_CHARS) {
    const whole = document.createElement("span");
    const text = span("str", reply.slice(0, SHOWN_CHARS));
    const size = new TextEncoder().encode(reply).length;
    const more = Object.assign(document.createElement("button"), { type: "button", className: "more", textContent: `… ${size} bytes: show all` });
    more.addEventListener("click", () => {
      text.textContent = reply;
      more.remove();
    });
    whole.append(text, more);
    return whole;
  }
  if (reply instanceof RedisError) return span("error", `(error) ${reply.message}`);
  // Bytes that are not text, as redis-cli shows them: "\xff\x00a".
  if (reply instanceof Uint8Array)
    return span("str", [...reply].map((b) => (b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`)).join(""));
  if (reply === null) return span("nil", "(nil)");
  if (typeof reply === "number" || typeof reply === "bigint") return span("int", `(integer) ${reply}`);
  if (typeof reply === "boolean") return span("int", `(${reply})`);
  if (reply instanceof Map) return render([...reply].flat());
  if (reply instanceof Set) return render([...reply]);
  if (Array.isArray(reply)) {
    if (reply.length === 0) return span("nil", "(empty array)");
    const list = document.createElement("ol");
    for (const item of reply) {
      const li = document.createElement("li");
      li.append(render(item));
      list.append(li);
    }
    return list;
  }
  return span("str", reply);
}

function redisConnected(connected) {
  $("redis-command").disabled = $("redis-run").disabled = $("redis-disconnect").disabled = !connected;
}

/** Why a Redis connection ended, in words (a restarting ws2s is not Redis closing). */
function ended(why) {
  if (why.by === "peer") return ["Redis closed the connection. Connect again when it is back.", "error"];
  if (why.by === "ws2s" && why.code === 1001) return ["The ws2s server is restarting (1001). Connect again when it is back.", "error"];
  if (why.by === "ws2s" && why.code === 1009)
    return [`Too big for the ws2s server: ${why.reason} (its limit is limits.maxMessageBytes in the ws2s config). Connect again to go on.`, "error"];
  if (why.by === "ws2s") return [`ws2s closed the session: ${why.code} ${why.reason}`.trim(), "error"];
  if (why.by === "network" && why.error) return [`The connection to the ws2s server broke and could not be resumed: ${explain(why.error)}`, "error"];
  if (why.by === "network") return ["The connection to the ws2s server broke.", "error"];
  return ["Disconnected.", ""];
}

$("redis-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const host = $("redis-host").value.trim();
  const port = Number($("redis-port").value);
  const tls = $("redis-tls").checked;
  const over = tls ? " over TLS" : "";
  setStatus($("redis-status"), `Connecting to Redis at ${host}:${port}${over}…`);
  // One connect at a time: quick repeated clicks would otherwise open (and leak) several sessions.
  $("redis-connect").disabled = true;
  redisConnected(false);
  let current;
  try {
    await redis?.close();
    redis = null;
    current = await client().redis({ host, port, password: $("redis-password").value || undefined, tls, resumable: true });
  } catch (error) {
    setStatus($("redis-status"), explainConnect(error), "error");
    $("redis-connect").disabled = false;
    return;
  }
  redis = current;
  $("redis-connect").disabled = false;
  // Pub/sub messages and MONITOR lines: a live stream in the log, apart from replies.
  current.onPush = (push) => logLine($("redis-output"), "push",
    push.kind === "monitor" ? push.line
      : push.kind === "message" ? `message on ${push.channel}: ${push.message}`
      : push.kind === "pmessage" ? `message on ${push.channel} (${push.pattern}): ${push.message}`
      : `${push.kind} ${JSON.stringify(push.items)}`);
  current.closed.then((why) => {
    if (redis !== current) return; // replaced or disconnected already
    redis = null;
    redisConnected(false);
    setStatus($("redis-status"), ...ended(why));
  });
  setStatus($("redis-status"), `Connected to Redis at ${host}:${port}${over}.`, "ok");
  resumeNotes(current, $("redis-status"), $("redis-output"), `Connected to Redis at ${host}:${port}${over}.`);
  redisConnected(true);
  $("redis-command").focus();
});

$("redis-disconnect").addEventListener("click", async () => {
  const current = redis;
  redis = null;
  redisConnected(false);
  await current?.close();
  setStatus($("redis-status"), "Disconnected.");
});

$("redis-command-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const line = $("redis-command").value.trim();
  if (!line) return;
  commandHistory.push(line);
  historyAt = commandHistory.length;
  draft = "";
  $("redis-command").value = "";
  const entry = document.createElement("div");
  entry.className = "reply";
  entry.append(Object.assign(document.createElement("div"), { className: "cmd", textContent: `> ${line}` }));
  logLine($("redis-output"), "", entry);
  try {
    if (!redis) throw new Error("Not connected: connect first.");
    entry.append(render(await redis.request(line)));
  } catch (error) {
    entry.append(Object.assign(document.createElement("span"), { className: "error", textContent: error instanceof RedisError ? `(error) ${error.message}` : explain(error) }));
  }
  // The user just sent it: its reply comes into view (its start, when it is taller than the view), wherever the log was
  // scrolled; only what arrives on its own (pushes, MONITOR) leaves a reader's place alone.
  const list = $("redis-output");
  const item = entry.parentElement;
  const top = item.offsetTop - list.offsetTop;
  list.scrollTop = item.offsetHeight > list.clientHeight ? top : top + item.offsetHeight - list.clientHeight;
});

$("redis-command").addEventListener("keydown", (event) => {
  if (event.key !== "ArrowUp" && event.key !== "ArrowDown") return;
  event.preventDefault();
  if (historyAt === commandHistory.length) draft = $("redis-command").value;
  historyAt = Math.max(0, Math.min(commandHistory.length, historyAt + (event.key === "ArrowUp" ? -1 : 1)));
  $("redis-command").value = commandHistory[historyAt] ?? draft;
});
