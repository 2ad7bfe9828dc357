// Plain HTTP inside a CONNECT tunnel: Node's fetch with NODE_USE_ENV_PROXY
// (set in every agent) tunnels http:// URLs through CONNECT. The firewall
// serves such a tunnel as plain HTTP with the same rules as an intercepted
// one (DLP, the tunnel's own authority); TLS tunnels are unchanged.
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReloadableState } from "../../../../src/sidecars/proxy/config-file.js";
import { buildFirewallState, createFirewall } from "../../../../src/sidecars/proxy/firewall.js";
import { createEventLog } from "../../../../src/sidecars/kit/log.js";
import type { ProxyServer } from "../../../../src/sidecars/proxy/proxy-server.js";
import { rawConnect } from "../../../fixtures/proxy/client.js";
import { createTestCa, writePem } from "../../../helpers/proxy/ca.js";

const TOKEN = `tok-${"9Kd4".repeat(8)}`;

/** CONNECT, then one raw plain-HTTP request in the tunnel; the raw response text. */
async function plainInTunnel(proxy: string, authority: string, request: string): Promise<string> {
  const answer = await rawConnect(proxy, authority);
  if (!answer.socket) return `CONNECT ${answer.status} ${answer.body}`;
  const socket = answer.socket;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("close", () => resolve(Buffer.concat(chunks).toString("utf8")));
    socket.write(request);
    setTimeout(() => socket.destroy(), 5_000).unref();
  });
}

describe("plain HTTP in a CONNECT tunnel (in-process firewall)", () => {
  let dir: string;
  let upstream: Server;
  let port: number;
  let firewall: ProxyServer<unknown>;
  let firewallUrl: string;
  const seen: string[] = [];
  const logs: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "plain-tunnel-"));
    const fw = await writePem(join(dir, "fw"), await createTestCa("fw"));
    upstream = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.host}`);
      res.end("plain ok\n");
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    port = (upstream.address() as AddressInfo).port;
    const file = join(dir, "firewall.json");
    await writeFile(
      file,
      JSON.stringify({
        version: 1,
        allow: ["plain.test"],
        allow_cidrs: ["127.0.0.0/8"],
        intercept: { enabled: true, ca_cert: fw.cert, ca_key: fw.key, passthrough: [] },
        dlp: { enabled: true, canary_env: ["TOKEN"], canary_exempt: [] },
        upstream_ca_files: [],
      }),
    );
    const log = createEventLog("firewall", (l) => logs.push(l));
    const state = await ReloadableState.create(
      () => buildFirewallState(file, { TOKEN }, log, async (name) => (name === "plain.test" ? ["127.0.0.1"] : Promise.reject(Object.assign(new Error("nx"), { code: "ENOTFOUND" })))),
      () => {},
    );
    firewall = createFirewall(state, log) as ProxyServer<unknown>;
    await firewall.listen(0, "127.0.0.1");
    firewallUrl = `http://127.0.0.1:${(firewall.server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await firewall?.close();
    upstream?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("forwards a plain request to the tunnel's host and logs it as http", async () => {
    seen.length = 0;
    logs.length = 0;
    const text = await plainInTunnel(firewallUrl, `plain.test:${port}`, `GET /x?q=1 HTTP/1.1\r\nHost: plain.test:${port}\r\nConnection: close\r\n\r\n`);
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    expect(text).toContain("plain ok");
    expect(seen).toEqual([`GET /x?q=1 plain.test:${port}`]);
    expect(logs.map((l) => JSON.parse(l) as Record<string, unknown>)).toContainEqual(
      expect.objectContaining({ event: "request", host: "plain.test", scheme: "http", decision: "allowed", status: 200 }),
    );
  });

  it("holds it to the same rules: DLP and the tunnel's own authority", async () => {
    seen.length = 0;
    const leak = await plainInTunnel(firewallUrl, `plain.test:${port}`, `GET /?k=${TOKEN} HTTP/1.1\r\nHost: plain.test\r\nConnection: close\r\n\r\n`);
    expect(leak).toMatch(/^HTTP\/1\.1 403/);
    expect(leak).toContain("blocked by dlp");
    const other = await plainInTunnel(firewallUrl, `plain.test:${port}`, `GET http://evil.test/ HTTP/1.1\r\nHost: plain.test\r\nConnection: close\r\n\r\n`);
    expect(other).toMatch(/^HTTP\/1\.1 400/);
    expect(seen).toEqual([]);
  });

  it("Node's fetch with NODE_USE_ENV_PROXY reaches an http:// URL through the firewall", async () => {
    const script = `fetch('http://plain.test:${port}/node').then(async r=>console.log(r.status, (await r.text()).trim()),e=>console.log('ERR',String(e.cause?.cause?.message??e.cause?.message??e)))`;
    const out = await new Promise<string>((resolve) => {
      const child = spawn(process.execPath, ["-e", script], { env: { PATH: process.env.PATH, NODE_USE_ENV_PROXY: "1", HTTP_PROXY: firewallUrl, HTTPS_PROXY: firewallUrl } });
      let o = "";
      child.stdout.on("data", (d: Buffer) => (o += d));
      child.stderr.on("data", (d: Buffer) => (o += d));
      child.on("close", () => resolve(o.trim()));
    });
    expect(out).toBe("200 plain ok");
  });
});
