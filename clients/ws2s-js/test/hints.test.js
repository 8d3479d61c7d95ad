// refusalHint: a code 4's words (spec/protocol.md: `ws2s refuse to connect target host: H, cause
// that's a dangerous operation (RULE)`) turned into the config keys that would allow the destination.
import { test } from "node:test";
import assert from "node:assert/strict";
import { refusalHint } from "../ws2s.js";

const refused = (host, rule) => `ws2s refuse to connect target host: ${host}, cause that's a dangerous operation (${rule})`;
const local = (example) =>
  `To allow it: "allowConnectToServerLocal": true in the ws2s config (every port of this machine but ws2s's own), or "${example}" in destinations.allow (only that; once destinations.allow has a rule, only what it allows is reachable).`;

test("this machine: allowConnectToServerLocal, or the address and port in destinations.allow", () => {
  assert.equal(refusalHint(refused("127.0.0.1", "loopback 127.0.0.0/8"), 6379), local("127.0.0.1:6379"));
  assert.equal(refusalHint(refused("localhost", "loopback 127.0.0.0/8"), 6379), local("127.0.0.1:6379"));
  assert.equal(refusalHint(refused("::1", "loopback ::1"), 6379), local("[::1]:6379"));
  assert.equal(refusalHint(refused("0.0.0.0", "this host 0.0.0.0/8"), 80), local("0.0.0.0:80"));
  assert.equal(refusalHint(refused("::", "unspecified ::"), 80), local("[::]:80"));
  assert.equal(refusalHint(refused("my-laptop.lan", "this machine's address 192.168.1.20"), 22), local("192.168.1.20:22"));
});

test("a private or special range: an address rule in destinations.allow (a name rule does not open it)", () => {
  assert.equal(refusalHint(refused("10.1.2.3", "private network 10.0.0.0/8"), 6379),
    `To allow it: "10.1.2.3:6379" in destinations.allow in the ws2s config (once destinations.allow has a rule, only what it allows is reachable).`);
  assert.equal(refusalHint(refused("fd00::5", "unique local fc00::/7"), 6379),
    `To allow it: "[fd00::5]:6379" in destinations.allow in the ws2s config (once destinations.allow has a rule, only what it allows is reachable).`);
  assert.equal(refusalHint(refused("redis.internal", "private network 10.0.0.0/8"), 6379),
    `To allow it: the address redis.internal resolves to, with the port, in destinations.allow in the ws2s config (e.g. "10.0.0.0/8:6379" for all of 10.0.0.0/8); a name rule does not open private network 10.0.0.0/8.`);
  assert.equal(refusalHint(refused("metadata.example", "link-local and cloud metadata 169.254.0.0/16"), 80),
    `To allow it: the address metadata.example resolves to, with the port, in destinations.allow in the ws2s config (e.g. "169.254.0.0/16:80" for all of 169.254.0.0/16); a name rule does not open link-local and cloud metadata 169.254.0.0/16.`);
  assert.equal(refusalHint(refused("v6.internal", "unique local fc00::/7"), 443),
    `To allow it: the address v6.internal resolves to, with the port, in destinations.allow in the ws2s config (e.g. "[fc00::]/7:443" for all of fc00::/7); a name rule does not open unique local fc00::/7.`);
  assert.equal(refusalHint(refused("all.example", "broadcast 255.255.255.255"), 9),
    `To allow it: the address all.example resolves to, with the port, in destinations.allow in the ws2s config (e.g. "255.255.255.255:9"); a name rule does not open broadcast 255.255.255.255.`);
});

test("deny rules, the allow list, ssh.allowTargets, tls.required, scopes, ws2s itself", () => {
  assert.equal(refusalHint(refused("10.1.2.99", "deny rule 10.1.2.99"), 22),
    `destinations.deny in the ws2s config has the rule "10.1.2.99", which refuses it whatever allows it: take it out (or narrow it) to allow this destination.`);
  assert.equal(refusalHint(refused("example.com", "not in the allow list"), 80),
    `To allow it: "example.com:80" in destinations.allow in the ws2s config.`);
  assert.equal(refusalHint(refused("2001:db8::1", "not in the allow list"), 80),
    `To allow it: "[2001:db8::1]:80" in destinations.allow in the ws2s config.`);
  assert.equal(refusalHint(refused("db.internal", "not in ssh.allowTargets"), 5432),
    `To allow it: "db.internal:5432" in ssh.allowTargets in the ws2s config.`);
  assert.equal(refusalHint(refused("redis.internal", 'tls.required redis.internal:6380: connect with "tls": true'), 6380),
    `The ws2s config's tls.required lists it: connect with TLS ("tls": true), or take the rule out of tls.required.`);
  assert.equal(refusalHint(refused("other.internal", "not in this session's scope"), 6379),
    `This session may reach only what its signed token's ws2s.allow claim (or the app that embeds ws2s) allows, and other.internal:6379 is not in it.`);
  assert.equal(refusalHint(refused("bastion.example", "SSH tunnels are not in this session's scope"), 22),
    `The session's signed token says "ssh": false: SSH tunnels need a token that allows them.`);
  assert.equal(refusalHint(refused("127.0.0.1", "the ws2s server itself"), 3613),
    `Nothing allows it: a session may not connect to the ws2s server's own ports.`);
});

test("words that already say what to do, other words, and no port", () => {
  assert.equal(refusalHint(refused("example.com", "the session's token expired at 2030-01-01T00:00:00Z; open a new session with a new token"), 80), null);
  assert.equal(refusalHint(refused("example.com", "a rule from a newer server"), 80), "See destinations.allow and destinations.deny in the ws2s config.");
  assert.equal(refusalHint("connection refused", 80), null);
  assert.equal(refusalHint(refused("example.com", "not in the allow list")), `To allow it: "example.com:PORT" in destinations.allow in the ws2s config.`);
});
