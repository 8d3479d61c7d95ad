// A WebSocket echo server on Node's `ws`: the Node client's own cost, with no relay behind it. Every message
// comes back as it came (binary stays binary). Listens on 127.0.0.1 (a free port), prints {"port":N} once
// listening, and exits when its standard input closes.
"use strict";
const { WebSocket } = require("./common.cjs");

const server = new WebSocket.Server({ host: "127.0.0.1", port: 0, perMessageDeflate: false, handleProtocols: (offered) => [...offered][0] ?? false });
server.on("connection", (ws) => {
  ws._socket.setNoDelay(true);
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
});
server.on("listening", () => console.log(JSON.stringify({ port: server.address().port })));
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
