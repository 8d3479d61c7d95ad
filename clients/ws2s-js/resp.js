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
 */
export function splitCommandLine(line) {
  const words = [];
  let word = null; // the bytes of the word being read
  let raw = false; // it holds a \xHH byte
  let quote = null;
  const add = (text) => word.push(...encoder.encode(text));
  const finish = () => {
    const bytes = new Uint8Array(word);
    let text = null;
    if (raw) {
      try {
        text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      } catch {
        text = null;
      }
    } else {
      text = decoder.decode(bytes);
    }
    words.push(text ?? bytes);
    word = null;
    raw = false;
  };
  const chars = [...line]; // by code point: an emoji is one character, not two halves
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (quote) {
      if (c === "\\" && quote === '"' && i + 1 < chars.length) {
        const n = chars[++i];
        const hex = chars.slice(i + 1, i + 3).join("");
        if (n === "x" && /^[0-9a-fA-F]{2}$/.test(hex)) {
          word.push(parseInt(hex, 16));
          raw = true;
          i += 2;
        } else {
          add({ n: "\n", r: "\r", t: "\t" }[n] ?? n);
        }
      } else if (c === quote) {
        quote = null;
      } else {
        add(c);
      }
    } else if (c === '"' || c === "'") {
      quote = c;
      word ??= [];
    } else if (c === " " || c === "\t") {
      if (word !== null) finish();
    } else {
      word ??= [];
      add(c);
    }
  }
  if (quote) throw new Error("unbalanced quotes");
  if (word !== null) finish();
  return words;
}
