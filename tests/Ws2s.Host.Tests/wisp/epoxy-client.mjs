#!/usr/bin/env node
// epoxy-tls (npm @mercuryworkshop/epoxy-tls: MercuryWorkshop's Rust Wisp client, compiled to WebAssembly) fetching a URL
// over a Wisp server, as the test suite runs it: one line of JSON on stdout.
//   node --experimental-websocket epoxy-client.mjs --modules NODE_MODULES --wisp ws://127.0.0.1:PORT/wisp/ --url http://127.0.0.1:PORT/
// Loopback only: the script refuses any other Wisp server or URL host.
import path from "node:path";
import { pathToFileURL } from "node:url";

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, arg, i, all) => (arg.startsWith("--") ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), []));
const loopback = (url) => ["127.0.0.1", "localhost", "[::1]"].includes(new URL(url).hostname);
const done = (result, code) => { process.stdout.write(JSON.stringify(result) + "\n"); process.exit(code); };
if (!args.modules || !args.wisp || !args.url) done({ ok: false, error: "usage: --modules DIR --wisp WS_URL --url URL" }, 2);
if (!loopback(args.wisp) || !loopback(args.url)) done({ ok: false, error: "loopback only" }, 2);
setTimeout(() => done({ ok: false, error: "timed out" }, 1), Number(args["timeout-ms"] ?? 20000)).unref();
try {
  const entry = path.join(args.modules, "@mercuryworkshop", "epoxy-tls", "full", "epoxy-bundled.js");
  const { default: init, EpoxyClient, EpoxyClientOptions } = await import(pathToFileURL(entry).href);
  await init();
  const options = new EpoxyClientOptions();
  options.wisp_v2 = args.version !== "1";
  options.udp_extension_required = false;
  const client = new EpoxyClient(args.wisp, options);
  const response = await client.fetch(args.url, {});
  done({ ok: true, status: response.status, body: await response.text() }, 0);
} catch (error) {
  done({ ok: false, error: String(error?.message ?? error) }, 1);
}
