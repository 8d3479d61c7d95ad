// RESP2 (the Redis protocol): an incremental reply parser and a command encoder.
// Replies may arrive split anywhere (across TCP reads and recv data messages): feed() takes
// whatever bytes came and returns every reply that is now complete, keeping the rest.

const CRLF = [13, 10];

/** An error reply from Redis (`-ERR ...`). */
export class RedisError extends Error {
  constructor(message) {
    super(message);
    this.name = "RedisError";
  }
}

const decoder = new TextDecoder();

export class RespParser {
  #buffer = new Uint8Array(0);

  /** Adds bytes; returns the replies completed by them, in order. */
  feed(bytes) {
    const joined = new Uint8Array(this.#buffer.length + bytes.length);
    joined.set(this.#buffer, 0);
    joined.set(bytes, this.#buffer.length);
    this.#buffer = joined;
    const replies = [];
    let offset = 0;
    while (offset < this.#buffer.length) {
      const parsed = parseAt(this.#buffer, offset);
      if (parsed === undefined) break; // incomplete: wait for more bytes
      replies.push(parsed.value);
      offset = parsed.next;
    }
    this.#buffer = this.#buffer.slice(offset);
    return replies;
  }
}

function lineEnd(buffer, from) {
  for (let i = from; i + 1 < buffer.length; i++) {
    if (buffer[i] === CRLF[0] && buffer[i + 1] === CRLF[1]) return i;
  }
  return -1;
}

/** A RESP3 push (`>`: pub/sub messages, invalidations): never the reply to a command. */
export class RespPush {
  constructor(items) {
    this.items = items;
  }
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * A bulk payload: `length` bytes after the line, then CRLF; undefined when incomplete. Text when it
 * is UTF-8, else the bytes themselves (a Uint8Array): a binary value is never mangled.
 */
function bulk(buffer, next, line) {
  const length = Number(line);
  if (length < 0) return { value: null, next };
  if (buffer.length < next + length + 2) return undefined;
  const bytes = buffer.subarray(next, next + length);
  let value;
  try {
    value = strictUtf8.decode(bytes);
  } catch {
    value = bytes.slice();
  }
  return { value, next: next + length + 2 };
}

/** `count` replies in a row from `at`: { value: [...], next } or undefined when incomplete. */
function many(buffer, at, count) {
  const items = [];
  for (let i = 0; i < count; i++) {
    const item = parseAt(buffer, at);
    if (item === undefined) return undefined;
    items.push(item.value);
    at = item.next;
  }
  return { value: items, next: at };
}

/** An integer: a Number while exact, a BigInt beyond 2^53 (no precision lost). */
function integer(line) {
  const n = Number(line);
  return Number.isSafeInteger(n) ? n : BigInt(line);
}

/** Parses one reply (RESP2, and RESP3 after HELLO 3) at `offset`: { value, next } or undefined when incomplete. */
function parseAt(buffer, offset) {
  const end = lineEnd(buffer, offset + 1);
  if (end < 0) return undefined;
  const type = String.fromCharCode(buffer[offset]);
  const line = decoder.decode(buffer.subarray(offset + 1, end));
  const next = end + 2;
  switch (type) {
    case "+": return { value: line, next };
    case "-": return { value: new RedisError(line), next };
    case ":": return { value: integer(line), next };
    case "$": return bulk(buffer, next, line);
    case "*": return Number(line) < 0 ? { value: null, next } : many(buffer, next, Number(line));
    // RESP3
    case "_": return { value: null, next };
    case "#": return { value: line === "t", next };
    case ",": return { value: line === "inf" ? Infinity : line === "-inf" ? -Infinity : line === "nan" ? NaN : Number(line), next };
    case "(": return { value: BigInt(line), next };
    case "!": {
      const text = bulk(buffer, next, line);
      return text && { value: new RedisError(text.value), next: text.next };
    }
    case "=": {
      const text = bulk(buffer, next, line); // "txt:…" or "mkd:…": the format, then the text
      return text && { value: text.value.slice(4), next: text.next };
    }
    case "~": {
      const items = many(buffer, next, Number(line));
      return items && { value: new Set(items.value), next: items.next };
    }
    case "%": {
      const items = many(buffer, next, 2 * Number(line));
      if (!items) return undefined;
      const map = new Map();
      for (let i = 0; i < items.value.length; i += 2) map.set(items.value[i], items.value[i + 1]);
      return { value: map, next: items.next };
    }
    case ">": {
      const items = many(buffer, next, Number(line));
      return items && { value: new RespPush(items.value), next: items.next };
    }
    case "|": {
      // Attributes describe the reply that follows: skipped, the reply kept.
      const attributes = many(buffer, next, 2 * Number(line));
      return attributes && parseAt(buffer, attributes.next);
    }
    default:
      throw new Error(`not a RESP reply: unexpected '${type}'`);
  }
}

const encoder = new TextEncoder();

/** Encodes a command (an array of words) as a RESP array of bulk strings (text; see encodeCommandBytes for raw bytes). */
export function encodeCommand(words) {
  let text = `*${words.length}\r\n`;
  for (const word of words) text += `$${encoder.encode(String(word)).length}\r\n${word}\r\n`;
  return text;
}

/** Encodes a command whose words may be raw bytes (Uint8Array) as well as text. */
export function encodeCommandBytes(words) {
  const parts = [encoder.encode(`*${words.length}\r\n`)];
  for (const word of words) {
    const bytes = word instanceof Uint8Array ? word : encoder.encode(String(word));
    parts.push(encoder.encode(`$${bytes.length}\r\n`), bytes, encoder.encode("\r\n"));
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * Splits a command line the way redis-cli does: spaces separate, quotes group, backslash escapes in
 * double quotes — `\n`, `\r`, `\t`, `\xHH` (a byte). A word with a byte that is not text comes as a
 * Uint8Array (send it with encodeCommandBytes).
 *
 * One pass over runs of plain text (a 10 MB value is one slice, not ten million pushes: the console froze for
 * seconds on a pasted value when this went a character at a time).
 */
export function splitCommandLine(line) {
  const words = [];
  let word = null; // the parts of the word being read: strings, and numbers for \xHH bytes
  let raw = false; // it holds a \xHH byte
  const finish = () => {
    let value;
    if (!raw) value = word.join("");
    else {
      const chunks = word.map((part) => (typeof part === "number" ? Uint8Array.of(part) : encoder.encode(part)));
      const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const chunk of chunks) {
        bytes.set(chunk, at);
        at += chunk.length;
      }
      try {
        value = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      } catch {
        value = bytes;
      }
    }
    words.push(value);
    word = null;
    raw = false;
  };
  // Where the plain run ends: outside quotes at a space, tab or quote; in double quotes at a backslash or the quote; in
  // single quotes at the quote.
  const stops = { none: /[ \t"']/g, '"': /["\\]/g, "'": /'/g };
  let quote = null;
  let i = 0;
  while (i < line.length) {
    const stop = stops[quote ?? "none"];
    stop.lastIndex = i;
    const found = stop.exec(line);
    const end = found ? found.index : line.length;
    if (end > i) {
      word ??= [];
      word.push(line.slice(i, end));
    }
    if (!found) break;
    const c = line[end];
    i = end + 1;
    if (quote === null) {
      if (c === '"' || c === "'") {
        quote = c;
        word ??= [];
      } else if (word !== null) finish(); // a space or tab
    } else if (c === quote) {
      quote = null;
    } else if (i >= line.length) {
      word.push("\\"); // a backslash at the very end (the quote is unbalanced)
    } else {
      // A backslash in double quotes.
      const hex = line.slice(i + 1, i + 3);
      if (line[i] === "x" && /^[0-9a-fA-F]{2}$/.test(hex)) {
        word.push(parseInt(hex, 16));
        raw = true;
        i += 3;
      } else {
        const escaped = String.fromCodePoint(line.codePointAt(i));
        word.push({ n: "\n", r: "\r", t: "\t" }[escaped] ?? escaped);
        i += escaped.length;
      }
    }
  }
  if (quote) throw new Error("unbalanced quotes");
  if (word !== null) finish();
  return words;
}
