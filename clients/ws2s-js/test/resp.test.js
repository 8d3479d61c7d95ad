import { test } from "node:test";
import assert from "node:assert/strict";
import { RespParser, RedisError, encodeCommand, encodeCommandBytes, splitCommandLine } from "../resp.js";

const stream = "+OK\r\n-ERR wrong type\r\n:42\r\n$4\r\nhé!\r\n$-1\r\n*0\r\n*-1\r\n" +
  "*3\r\n$3\r\nfoo\r\n:7\r\n*2\r\n$0\r\n\r\n$-1\r\n";
const bytes = new TextEncoder().encode(stream);
const expected = ["OK", { error: "ERR wrong type" }, 42, "hé!", null, [], null, ["foo", 7, ["", null]]];

/** Error replies compared by class and message (Error objects carry stacks). */
const plain = (v) => (v instanceof RedisError ? { error: v.message } : Array.isArray(v) ? v.map(plain) : v);

function parseInPieces(cuts) {
  const parser = new RespParser();
  const replies = [];
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    replies.push(...parser.feed(bytes.subarray(at, cut)));
    at = cut;
  }
  return replies.map(plain);
}

test("every reply type parses, including nested arrays, nulls and errors", () => {
  assert.deepEqual(parseInPieces([]), expected);
});

test("fed one byte at a time, the parser gives the same replies", () => {
  assert.deepEqual(parseInPieces([...Array(bytes.length).keys()].slice(1)), expected);
});

test("split at random places (1000 ways), the parser gives the same replies", () => {
  let seed = 20261126;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let run = 0; run < 1000; run++) {
    const cuts = [...new Set(Array.from({ length: 1 + Math.floor(random() * 10) }, () => 1 + Math.floor(random() * (bytes.length - 1))))]
      .sort((a, b) => a - b);
    assert.deepEqual(parseInPieces(cuts), expected, `cuts ${cuts}`);
  }
});

test("a multi-byte character split across chunks is not mangled", () => {
  const parser = new RespParser();
  const reply = new TextEncoder().encode("$4\r\n✓!\r\n");
  assert.deepEqual([...parser.feed(reply.subarray(0, 6)), ...parser.feed(reply.subarray(6))], ["✓!"]);
});

test("commands encode as RESP arrays with byte lengths", () => {
  assert.equal(encodeCommand(["SET", "k", "héllo"]), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$6\r\nhéllo\r\n");
});

test("command lines split like redis-cli: quotes group, escapes in double quotes", () => {
  assert.deepEqual(splitCommandLine(`set "a key" 'it''s'  "line\\nbreak"`), ["set", "a key", "its", "line\nbreak"]);
  assert.deepEqual(splitCommandLine(`get ""`), ["get", ""]);
  assert.throws(() => splitCommandLine(`get "open`));
});

test("a long value is read in runs of plain text (a pasted 10 MB value used to freeze the console), split as redis-cli splits it", () => {
  const value = "x".repeat(10_000_000);
  const words = splitCommandLine(`SET big ${value} "${value}" 'a\\b' "q\\"d\\😀\\t"`);
  assert.equal(words.length, 6);
  assert.deepEqual(words.slice(0, 2), ["SET", "big"]);
  assert.ok(words[2] === value && words[3] === value);
  assert.deepEqual(words.slice(4), ["a\\b", 'q"d😀\t']);
  assert.throws(() => splitCommandLine(`SET k "end\\`), /unbalanced/);
});

test("command lines take redis-cli's \\xHH escapes: bytes that are not text come as a Uint8Array, sent as they are", () => {
  assert.deepEqual(splitCommandLine('SET k "\\xff\\x00a"'), ["SET", "k", new Uint8Array([0xff, 0x00, 0x61])]);
  assert.deepEqual(splitCommandLine('SET k "\\x68\\x69 \\xc3\\xa9" 😀'), ["SET", "k", "hi é", "😀"]);
  assert.deepEqual(encodeCommandBytes(["SET", new Uint8Array([0xff])]), new TextEncoder().encode("*2\r\n$3\r\nSET\r\n$1\r\n").constructor.from(
    [...new TextEncoder().encode("*2\r\n$3\r\nSET\r\n$1\r\n"), 0xff, 13, 10]));
  assert.deepEqual(encodeCommandBytes(["GET", "é"]), new TextEncoder().encode(encodeCommand(["GET", "é"])));
});

test("RESP3 replies parse: maps, sets, booleans, doubles, big numbers, verbatim strings, nulls, pushes, attributes; big integers exact", () => {
  const text = "%1\r\n+k\r\n~2\r\n:1\r\n#t\r\n_\r\n,1.5\r\n,inf\r\n(123456789012345678901234567890\r\n=9\r\ntxt:héé\r\n" +
    ">2\r\n+message\r\n+x\r\n|1\r\n+ttl\r\n:3\r\n+kept\r\n:9007199254740993\r\n!3\r\nERR\r\n";
  const replies = new RespParser().feed(new TextEncoder().encode(text));
  assert.deepEqual(replies[0], new Map([["k", new Set([1, true])]]));
  assert.deepEqual(replies.slice(1, 6), [null, 1.5, Infinity, 123456789012345678901234567890n, "héé"]);
  assert.deepEqual(replies[6].items, ["message", "x"]);
  assert.equal(replies[7], "kept");
  assert.equal(replies[8], 9007199254740993n);
  assert.ok(replies[9] instanceof RedisError && replies[9].message === "ERR");
});
