#!/usr/bin/env node
// Reference Wisp server from @mercuryworkshop/wisp-js (tested with 0.5.0), bound to loopback,
// for cross-checking the wisp-js-client.mjs test client.
//
// Usage:
//   node wisp-js-server.mjs [--port 0] [--host 127.0.0.1] [--version 1|2]
//        [--echo] [--block-loopback] [--motd TEXT] [--options JSON]
//        [--log-level DEBUG|INFO|WARN|ERROR|NONE] [--max-lifetime-ms 600000]
//        [--modules /path/to/node_modules]
//
// Package location: --modules or WISP_JS_MODULES (node_modules folder holding
// @mercuryworkshop/wisp-js), else normal Node resolution.
//
// By default the wisp options allow loopback destinations (allow_loopback_ips=true);
// private ranges stay blocked. --block-loopback restores the library default so a
// stream to 127.0.0.1 is refused with CLOSE reason 0x48 (HostBlocked).
// --echo also starts a TCP echo server on 127.0.0.1 (ephemeral port).
//
// stdout: one JSON line once listening, e.g.
//   {"event":"listening","host":"127.0.0.1","port":40123,"wispVersion":2,"echoPort":40124}
// All library logging is redirected to stderr. Exits on SIGINT/SIGTERM or after
// --max-lifetime-ms (0 = no limit).

import http from "node:http";
import net from "node:net";
import path from "node:path";
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

// wisp-js logs with console.info/console.log (stdout); keep stdout for our one line.
console.info = (...a) => console.error(...a);
console.log = (...a) => console.error(...a);

function parseArgs(argv) {
  const o = {
    port: 0, host: "127.0.0.1", version: 2, echo: false, blockLoopback: false, motd: null,
    options: null, logLevel: "WARN", maxLifetimeMs: 600000, modules: process.env.WISP_JS_MODULES || null,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`);
      return argv[++i];
    };
    switch (a) {
      case "--port": o.port = parseInt(next(), 10); break;
      case "--host": o.host = next(); break;
      case "--version": o.version = parseInt(next(), 10); break;
      case "--echo": o.echo = true; break;
      case "--block-loopback": o.blockLoopback = true; break;
      case "--motd": o.motd = next(); break;
      case "--options": o.options = JSON.parse(next()); break;
      case "--log-level": o.logLevel = next().toUpperCase(); break;
      case "--max-lifetime-ms": o.maxLifetimeMs = parseInt(next(), 10); break;
      case "--modules": o.modules = next(); break;
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  if (!(o.host === "localhost" || o.host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(o.host))) {
    throw new Error(`refusing to listen on non-loopback host ${o.host}`);
  }
  if (o.version !== 1 && o.version !== 2) throw new Error("--version must be 1 or 2");
  return o;
}

async function loadWispServer(modulesDir) {
  if (modulesDir) {
    const pkgDir = path.join(path.resolve(modulesDir), "@mercuryworkshop", "wisp-js");
    const pkg = JSON.parse(readFileSync(path.join(pkgDir, "package.json"), "utf8"));
    const rel = pkg.exports?.["./server"]?.import ?? "./src/entrypoints/server.mjs";
    return { mod: await import(pathToFileURL(path.join(pkgDir, rel)).href), version: pkg.version };
  }
  return { mod: await import("@mercuryworkshop/wisp-js/server"), version: null };
}

function listen(server, port, host) {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server.address().port));
  });
}

let o;
try {
  o = parseArgs(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`wisp-js-server.mjs: ${e.message}\n`);
  process.exit(2);
}

const { mod, version } = await loadWispServer(o.modules);
const { server: wisp, logging } = mod;

if (!(o.logLevel in logging) || typeof logging[o.logLevel] !== "number") {
  process.stderr.write(`invalid --log-level ${o.logLevel}\n`);
  process.exit(2);
}
logging.set_level(logging[o.logLevel]);

wisp.options.allow_loopback_ips = !o.blockLoopback;
wisp.options.allow_private_ips = false;
wisp.options.wisp_version = o.version;
if (o.motd !== null) wisp.options.wisp_motd = o.motd;
if (o.options) for (const [k, v] of Object.entries(o.options)) wisp.options[k] = v;

const httpServer = http.createServer((req, res) => {
  res.writeHead(200, { "Content-Type": "text/plain" });
  res.end(`wisp-js-server v${version} is running`);
});
httpServer.on("upgrade", (req, socket, head) => wisp.routeRequest(req, socket, head));

let echoServer = null;
let echoPort = null;
if (o.echo) {
  echoServer = net.createServer((sock) => {
    sock.on("error", () => {});
    sock.pipe(sock);
  });
  echoPort = await listen(echoServer, 0, "127.0.0.1");
}

const port = await listen(httpServer, o.port, o.host);
process.stdout.write(JSON.stringify({
  event: "listening", host: o.host, port, wispVersion: o.version, echoPort,
  allowLoopback: wisp.options.allow_loopback_ips, wispJs: version,
}) + "\n");

const shutdown = () => {
  httpServer.close();
  echoServer?.close();
  process.exit(0);
};
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
if (o.maxLifetimeMs > 0) setTimeout(shutdown, o.maxLifetimeMs).unref();
