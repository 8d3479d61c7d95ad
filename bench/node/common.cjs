// What the bench's Node scripts (client.cjs, resume.cjs, echo-server.cjs) share: Node's `ws` (an npm install, or
// Debian's node-ws) and the command line, `--name value` pairs, with `--target HOST:PORT` split.
"use strict";
let WebSocket;
try {
  WebSocket = require("ws");
} catch {
  WebSocket = require("/usr/share/nodejs/ws"); // Debian's node-ws
}

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, word, i, all) =>
  word.startsWith("--") ? [...pairs, [word.slice(2), all[i + 1]]] : pairs, []));
const [host, port] = args.target
  ? [args.target.slice(0, args.target.lastIndexOf(":")), Number(args.target.slice(args.target.lastIndexOf(":") + 1))]
  : [undefined, undefined];

module.exports = { WebSocket, args, host, port };
