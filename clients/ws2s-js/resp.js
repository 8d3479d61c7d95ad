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

/** Parses one reply at `offset`: { value, next } or undefined when incomplete. */
function parseAt(buffer, offset) {
  const end = lineEnd(buffer, offset + 1);
  if (end < 0) return undefined;
  const type = String.fromCharCode(buffer[offset]);
  const line = decoder.decode(buffer.subarray(offset + 1, end));
  const next = end + 2;
  switch (type) {
    case "+": return { value: line, next };
    case "-": return { value: new RedisError(line), next };
    case ":": return { value: Number(line), next };
    case "$": {
      const length = Number(line);
      if (length < 0) return { value: null, next };
      if (buffer.length < next + length + 2) return undefined;
      return { value: decoder.decode(buffer.subarray(next, next + length)), next: next + length + 2 };
    }
    case "*": {
      const count = Number(line);
      if (count < 0) return { value: null, next };
      const items = [];
      let at = next;
      for (let i = 0; i < count; i++) {
        const item = parseAt(buffer, at);
        if (item === undefined) return undefined;
        items.push(item.value);
        at = item.next;
      }
      return { value: items, next: at };
    }
    default:
      throw new Error(`not a RESP reply: unexpected '${type}'`);
  }
}

const encoder = new TextEncoder();

/** Encodes a command (an array of words) as a RESP array of bulk strings. */
export function encodeCommand(words) {
  let text = `*${words.length}\r\n`;
  for (const word of words) text += `$${encoder.encode(String(word)).length}\r\n${word}\r\n`;
  return text;
}

/** Splits a command line the way redis-cli does: spaces separate, quotes group, backslash escapes in double quotes. */
export function splitCommandLine(line) {
  const words = [];
  let word = null;
  let quote = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === "\\" && quote === '"' && i + 1 < line.length) {
        const n = line[++i];
        word += { n: "\n", r: "\r", t: "\t" }[n] ?? n;
      } else if (c === quote) {
        quote = null;
      } else {
        word += c;
      }
    } else if (c === '"' || c === "'") {
      quote = c;
      word ??= "";
    } else if (c === " " || c === "\t") {
      if (word !== null) words.push(word);
      word = null;
    } else {
      word = (word ?? "") + c;
    }
  }
  if (quote) throw new Error("unbalanced quotes");
  if (word !== null) words.push(word);
  return words;
}
