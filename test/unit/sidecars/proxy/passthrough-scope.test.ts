// Passthrough tunnels (no interception, no DLP: egress injects credentials
// there) are held to exactly what a route names, and only while it does:
// - the route's host on its port, not the host on any port (a routed host on
//   another port through egress was spliced to the firewall and passed
//   through, so a secret in it was never scanned);
// - a reload that drops the host, or stops passing it through, ends the
//   tunnels to it opened before (an expired grant kept working on them).
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compilePassthrough, isPassthrough } from "../../../../src/sidecars/proxy/firewall.js";
import { rawConnect, send } from "../../../fixtures/proxy/client.js";
import { createTestCa, writePem } from "../../../helpers/proxy/ca.js";
import { type RunningProxy, startEgress, startFirewall } from "../../../helpers/proxy/in-process.js";
import type { FirewallState } from "../../../../src/sidecars/proxy/firewall.js";

const TOKEN = `ghp_${"PaSsThRoUgHsCoPe".repeat(2)}abcd`;

describe("passthrough matching", () => {
  it("matches a route's host on its port; a bare host (older configs) on any port", () => {
    const p = compilePassthrough([{ host: "api.test", port: 8443 }, { host: "*.cdn.test", port: 443 }, "legacy.test"]);
    expect(isPassthrough(p, "api.test", 8443)).toBe(true);
    expect(isPassthrough(p, "api.test", 443)).toBe(false);
    expect(isPassthrough(p, "x.cdn.test", 443)).toBe(true);
    expect(isPassthrough(p, "x.cdn.test", 8443)).toBe(false);
    expect(isPassthrough(p, "legacy.test", 1)).toBe(true);
    expect(isPassthrough(p, "other.test", 8443)).toBe(false);
  });
});

describe("passthrough tunnels through real proxies on loopback", () => {
  let dir: string;
  let routedUp: HttpsServer;
  let otherUp: HttpsServer;
  let routedPort = 0;
  let otherPort = 0;
  const upstreamSaw: string[] = [];
  let fw: RunningProxy<FirewallState>;
  let eg: RunningProxy<unknown>;
  let fwConfig: Record<string, unknown>;
  let upCaFile = "";
  let fwCaFile = "";
  let egCaFile = "";
  const logs: string[] = [];
  const resolve = async (n: string) => {
    if (n === "echo.test") return ["127.0.0.1"];
    throw Object.assign(new Error("not found"), { code: "ENOTFOUND" });
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "passthrough-scope-"));
    const [fwCa, egCa, upCa] = await Promise.all([createTestCa("fw"), createTestCa("eg"), createTestCa("up")]);
    const fwFiles = await writePem(join(dir, "fw-ca"), fwCa);
    const egFiles = await writePem(join(dir, "eg-ca"), egCa);
    const upFiles = await writePem(join(dir, "up-ca"), upCa);
    upCaFile = upFiles.cert;
    fwCaFile = fwFiles.cert;
    egCaFile = egFiles.cert;
    const leaf = await upCa.issue(["echo.test"]);
    const handler = (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        upstreamSaw.push(`${req.url} ${Buffer.concat(chunks).toString("latin1")}`);
        res.end("ok\n");
      });
    };
    routedUp = createHttpsServer({ cert: leaf.cert, key: leaf.key }, handler);
    otherUp = createHttpsServer({ cert: leaf.cert, key: leaf.key }, handler);
    await Promise.all([new Promise<void>((r) => routedUp.listen(0, "127.0.0.1", r)), new Promise<void>((r) => otherUp.listen(0, "127.0.0.1", r))]);
    routedPort = (routedUp.address() as AddressInfo).port;
    otherPort = (otherUp.address() as AddressInfo).port;
    fwConfig = {
      version: 1,
      allow: ["echo.test"],
      allow_cidrs: ["127.0.0.0/8"],
      intercept: { enabled: true, ca_cert: fwFiles.cert, ca_key: fwFiles.key, passthrough: [{ host: "echo.test", port: routedPort }] },
      dlp: { enabled: true, canary_env: ["TOKEN"], canary_exempt: [{ host: "echo.test", header: "Authorization", env: "TOKEN" }] },
      upstream_ca_files: [upFiles.cert],
      limits: { max_connections: 100, head_timeout_s: 5, handshake_timeout_s: 5, idle_timeout_s: 30, max_buffered_body_mb: 96 },
    };
    fw = await startFirewall(join(dir, "firewall.json"), fwConfig, { env: { TOKEN }, logs, resolve });
    eg = (await startEgress(
      join(dir, "egress.json"),
      {
        version: 1,
        upstream_proxy: fw.url,
        ca_cert: egFiles.cert,
        ca_key: egFiles.key,
        upstream_ca_files: [upFiles.cert, fwFiles.cert],
        routes: [{ name: "echo", host: "echo.test", port: routedPort, path_prefix: "/", header: "Authorization", value: "Bearer ${TOKEN}" }],
      },
      { env: { TOKEN }, logs },
    )) as RunningProxy<unknown>;
  });

  afterAll(async () => {
    await Promise.all([eg?.proxy.close(), fw?.proxy.close()]);
    routedUp?.close();
    otherUp?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("a routed host on a port no route names is intercepted and scanned by the firewall, not passed through", async () => {
    upstreamSaw.length = 0;
    // Egress routes only echo.test:<routedPort>; this CONNECT it relays to the firewall untouched.
    const r = await send({ proxy: eg.url, ca: [upCaFile, fwCaFile], url: `https://echo.test:${otherPort}/gist`, method: "POST", body: JSON.stringify({ content: TOKEN }) });
    expect(r.status).toBe(403);
    expect(r.body).toMatch(/blocked by dlp/);
    expect(upstreamSaw).toEqual([]);
    // A clean request there works, through the firewall's interception (its CA signs the leaf).
    const clean = await send({ proxy: eg.url, ca: [fwCaFile], url: `https://echo.test:${otherPort}/fine`, method: "GET" });
    expect(clean.status).toBe(200);
    expect(upstreamSaw).toEqual(["/fine "]);
  });

  it("the route's own host and port still pass through (the credential egress injects is not refused)", async () => {
    upstreamSaw.length = 0;
    // Egress intercepts its route (its CA signs the agent's leaf) and sends upstream through the firewall's passthrough.
    const r = await send({ proxy: eg.url, ca: [egCaFile], url: `https://echo.test:${routedPort}/api`, method: "GET" });
    expect(r.status).toBe(200);
    expect(upstreamSaw).toEqual(["/api "]);
  });

  it("a reload that stops passing a host through ends the tunnels to it opened before", async () => {
    const answer = await rawConnect(fw.url, `echo.test:${routedPort}`);
    expect(answer.status).toBe(200);
    const tls: TLSSocket = tlsConnect({ socket: answer.socket!, servername: "echo.test", ca: [await readFile(upCaFile, "utf8")] });
    tls.on("error", () => {});
    await new Promise((r) => tls.once("secureConnect", r));
    const closed = new Promise<void>((r) => tls.once("close", () => r()));
    // The grant is gone: the host is no longer passed through (it may still be allowed, then intercepted).
    const file = join(dir, "firewall.json");
    await writeFile(file, JSON.stringify({ ...fwConfig, intercept: { ...(fwConfig.intercept as object), passthrough: [] } }));
    try {
      await fw.state.reload();
      const outcome = await Promise.race([closed.then(() => "closed"), new Promise((r) => setTimeout(() => r("still open"), 2_000))]);
      expect(outcome).toBe("closed");
      expect(logs.some((l) => l.includes('"tunnels_closed"'))).toBe(true);
    } finally {
      tls.destroy();
      await writeFile(file, JSON.stringify(fwConfig));
      await fw.state.reload();
    }
  });

  it("a reload that keeps the host passes its open tunnels on", async () => {
    const answer = await rawConnect(fw.url, `echo.test:${routedPort}`);
    const tls: TLSSocket = tlsConnect({ socket: answer.socket!, servername: "echo.test", ca: [await readFile(upCaFile, "utf8")] });
    tls.on("error", () => {});
    await new Promise((r) => tls.once("secureConnect", r));
    await fw.state.reload();
    let body = "";
    tls.on("data", (c: Buffer) => {
      body += c.toString("latin1");
    });
    tls.write("GET /after-reload HTTP/1.1\r\nHost: echo.test\r\nConnection: close\r\n\r\n");
    await new Promise((r) => tls.once("close", r));
    expect(body).toMatch(/^HTTP\/1\.1 200/);
  });
});
