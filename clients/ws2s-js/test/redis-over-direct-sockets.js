// A small Redis client written against the Direct Sockets API alone: `new TCPSocket(host, port)` from the global scope,
// its `opened` streams, `close()`. Nothing here knows ws2s: the same file runs on a browser's own Direct Sockets, and
// (the suite installs ws2s.js's directSockets classes as the globals) in any page and in Node through ws2s.

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function command(words) {
  const parts = [`*${words.length}\r\n`];
  for (const word of words) parts.push(`$${encoder.encode(String(word)).length}\r\n${word}\r\n`);
  return encoder.encode(parts.join(""));
}

/** Reads RESP2 replies from a byte stream reader: simple strings, errors, integers, bulk strings, arrays. */
class Replies {
  #reader;
  #buffer = new Uint8Array(0);

  constructor(reader) {
    this.#reader = reader;
  }

  async #fill() {
    const { value, done } = await this.#reader.read();
    if (done) throw new Error("the connection closed in the middle of a reply");
    const joined = new Uint8Array(this.#buffer.length + value.length);
    joined.set(this.#buffer);
    joined.set(value, this.#buffer.length);
    this.#buffer = joined;
  }

  async #line() {
    for (;;) {
      const end = this.#buffer.findIndex((byte, i) => byte === 13 && this.#buffer[i + 1] === 10);
      if (end >= 0) {
        const line = decoder.decode(this.#buffer.subarray(0, end));
        this.#buffer = this.#buffer.subarray(end + 2);
        return line;
      }
      await this.#fill();
    }
  }

  async next() {
    const line = await this.#line();
    const rest = line.slice(1);
    switch (line[0]) {
      case "+": return rest;
      case "-": return new Error(rest);
      case ":": return Number(rest);
      case "$": {
        const length = Number(rest);
        if (length < 0) return null;
        while (this.#buffer.length < length + 2) await this.#fill();
        const text = decoder.decode(this.#buffer.subarray(0, length));
        this.#buffer = this.#buffer.subarray(length + 2);
        return text;
      }
      case "*": {
        const count = Number(rest);
        if (count < 0) return null;
        const items = [];
        for (let i = 0; i < count; i++) items.push(await this.next());
        return items;
      }
      default: throw new Error(`not RESP: ${line}`);
    }
  }
}

/**
 * Opens a connection to Redis at host:port, sends the commands pipelined (each an array of words), reads one reply per
 * command, and closes the connection: resolves with the replies (a Redis error reply as an Error in its place).
 */
export async function redisExchange(host, port, commands) {
  const socket = new TCPSocket(host, port, { noDelay: true });
  const { readable, writable } = await socket.opened;
  const writer = writable.getWriter();
  const reader = readable.getReader();
  for (const words of commands) await writer.write(command(words));
  const replies = new Replies(reader);
  const answers = [];
  for (let i = 0; i < commands.length; i++) answers.push(await replies.next());
  reader.releaseLock();
  writer.releaseLock();
  await socket.close();
  await socket.closed;
  return answers;
}
