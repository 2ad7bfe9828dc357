#!/usr/bin/env node
// claude-stand-in: a tiny stand-in for `claude -p "<prompt>"`, for trying the
// bottle (and testing it) without the real CLI. It calls the model API the
// way Claude Code does: POST $ANTHROPIC_BASE_URL/v1/messages (default
// https://api.anthropic.com) with the key from $ANTHROPIC_API_KEY in
// `x-api-key` and an `anthropic-version` header, through the proxy in
// $HTTPS_PROXY (CONNECT, then TLS trusting $NODE_EXTRA_CA_CERTS, which Node
// adds to its CA store itself). It prints the reply's text; on an HTTP error
// it prints the status and the body (a bottle's firewall says there why it
// refused) to stderr and exits 1.
//
//   claude-stand-in -p "Say hello" [--model NAME] [--output-format text|json]
import { request as httpRequest } from "node:http";
import { connect as tlsConnect } from "node:tls";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    print: { type: "string", short: "p" },
    model: { type: "string", default: process.env.ANTHROPIC_MODEL ?? "claude-sonnet-4-5" },
    "output-format": { type: "string", default: "text" },
  },
});
if (!values.print) fail('usage: claude-stand-in -p "<prompt>" [--model NAME] [--output-format text|json]');
const key = process.env.ANTHROPIC_API_KEY;
if (!key) fail("ANTHROPIC_API_KEY is not set (in a bottle, a placeholder is enough: egress injects the real key)");

const base = new URL(process.env.ANTHROPIC_BASE_URL ?? "https://api.anthropic.com");
if (base.protocol !== "https:") fail(`ANTHROPIC_BASE_URL must be https, got ${base.protocol}`);
const body = JSON.stringify({ model: values.model, max_tokens: 1024, messages: [{ role: "user", content: values.print }] });
const headers = {
  host: base.host,
  "content-type": "application/json",
  accept: "application/json",
  "content-length": Buffer.byteLength(body),
  "anthropic-version": "2023-06-01",
  "x-api-key": key,
  "user-agent": "claude-stand-in/1.0",
};

const socket = await tunnel(base.hostname, Number(base.port || 443));
const res = await new Promise((resolve, reject) => {
  const req = httpRequest({ createConnection: () => socket, method: "POST", path: `${base.pathname.replace(/\/$/, "")}/v1/messages`, headers }, resolve);
  req.on("error", reject);
  req.end(body);
}).catch((err) => fail(`request failed: ${err.message}`));
let text = "";
for await (const chunk of res) text += chunk;
socket.destroy();

if (res.statusCode < 200 || res.statusCode > 299) fail(`HTTP ${res.statusCode}: ${text.trim()}`);
const reply = JSON.parse(text);
if (values["output-format"] === "json") process.stdout.write(`${JSON.stringify(reply)}\n`);
else process.stdout.write(`${reply.content.filter((c) => c.type === "text").map((c) => c.text).join("")}\n`);

/** A TLS socket to host:port, through $HTTPS_PROXY when it is set. */
async function tunnel(host, port) {
  const proxy = process.env.HTTPS_PROXY ?? process.env.https_proxy;
  const raw = proxy
    ? await new Promise((resolve, reject) => {
        const p = new URL(proxy);
        const req = httpRequest({ agent: false, host: p.hostname, port: Number(p.port || 80), method: "CONNECT", path: `${host}:${port}`, headers: { host: `${host}:${port}` } });
        req.on("connect", (r, s) => {
          if (r.statusCode === 200) return resolve(s);
          let refusal = "";
          s.on("data", (d) => (refusal += d)).on("close", () => reject(new Error(`proxy refused CONNECT ${host}:${port}: ${r.statusCode} ${refusal.trim() || r.statusMessage}`)));
          setTimeout(() => s.destroy(), 2000);
        });
        req.on("error", reject);
        req.end();
      }).catch((err) => fail(err.message))
    : undefined;
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ ...(raw ? { socket: raw } : { host, port }), servername: host, ALPNProtocols: ["http/1.1"] }, () => resolve(s));
    s.on("error", reject);
  }).catch((err) => fail(`TLS to ${host}:${port} failed: ${err.message}`));
}

function fail(message) {
  process.stderr.write(`claude-stand-in: ${message}\n`);
  process.exit(1);
}
