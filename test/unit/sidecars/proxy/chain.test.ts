// The egress → firewall chain in-process on loopback, with a fake resolver:
// the request-level behaviour (injection, Host games, refusals, DLP, reload)
// without Docker. test/integration/proxy.test.ts proves the same in containers.
import { createHash } from "node:crypto";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ReloadableState } from "../../../../src/sidecars/proxy/config-file.js";
import type { FirewallState } from "../../../../src/sidecars/proxy/firewall.js";
import type { ProxyServer } from "../../../../src/sidecars/proxy/proxy-server.js";
import { send, type RequestSpec } from "../../../fixtures/proxy/client.js";
import { createTestCa, writePem } from "../../../helpers/proxy/ca.js";
import { startEgress, startFirewall } from "../../../helpers/proxy/in-process.js";
import { SECRET_SAMPLES } from "../../../helpers/proxy/secret-samples.js";

const TOKEN = `tok-${"7Hq2".repeat(8)}`;
const NAMES: Record<string, string> = { "routed.test": "127.0.0.1", "upstream.test": "127.0.0.1", "rebind.test": "10.9.9.9" };
const resolver = async (name: string) => {
  const a = NAMES[name];
  if (!a) throw Object.assign(new Error("not found"), { code: "ENOTFOUND" });
  return [a];
};
const sha = (s: string) => createHash("sha256").update(s).digest("hex");

describe("egress → firewall chain (in-process, loopback)", () => {
  let dir: string;
  let upstream: Server;
  let upPort: number;
  let firewall: ProxyServer<unknown>;
  let egress: ProxyServer<unknown>;
  let egressUrl: string;
  let firewallUrl: string;
  let ca: string[];
  let firewallConfig: Record<string, unknown>;
  let firewallFile: string;
  let firewallState: ReloadableState<FirewallState>;
  const logs: string[] = [];
  const reloads: Array<string | undefined> = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "proxy-chain-"));
    const [fwCa, egCa, upCa] = await Promise.all([createTestCa("fw"), createTestCa("eg"), createTestCa("up")]);
    const fwFiles = await writePem(join(dir, "fw-ca"), fwCa);
    const egFiles = await writePem(join(dir, "eg-ca"), egCa);
    const upFiles = await writePem(join(dir, "up-ca"), upCa);
    const leaf = await upCa.issue(["routed.test", "upstream.test"]);
    ca = [egFiles.cert, fwFiles.cert];

    upstream = createServer({ cert: leaf.cert, key: leaf.key }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const auth = req.headers.authorization;
        res.writeHead(200, { "content-type": "application/json" }).end(
          JSON.stringify({
            path: req.url,
            host: req.headers.host,
            auth_sha256: auth ? sha(auth) : null,
            auth_count: req.rawHeaders.filter((h, i) => i % 2 === 0 && h.toLowerCase() === "authorization").length,
          }),
        );
      });
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    upPort = (upstream.address() as AddressInfo).port;

    firewallFile = join(dir, "firewall.json");
    firewallConfig = {
      version: 1,
      allow: ["routed.test", "upstream.test", "rebind.test"],
      allow_cidrs: ["127.0.0.0/8"],
      intercept: { enabled: true, ca_cert: fwFiles.cert, ca_key: fwFiles.key, passthrough: ["routed.test"] },
      dlp: { enabled: true, canary_env: ["TOKEN"], canary_exempt: [{ host: "routed.test", header: "Authorization", env: "TOKEN" }] },
      upstream_ca_files: [upFiles.cert],
    };
    const fw = await startFirewall(firewallFile, firewallConfig, { env: { TOKEN }, logs, resolve: resolver, onReload: (e) => reloads.push(e?.message) });
    firewall = fw.proxy;
    firewallState = fw.state;
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
          { name: "api", host: "routed.test", port: upPort, path_prefix: "/api/", header: "Authorization", value: "Bearer ${TOKEN}" },
          { name: "missing", host: "routed.test", port: upPort, path_prefix: "/api/missing/", header: "X-Key", value: "${NOT_SET}" },
          { name: "refused", host: "not-allowed.test", path_prefix: "/", header: "X-Key", value: "${TOKEN}" },
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

  const via = (spec: Partial<RequestSpec> & { url: string }) => send({ proxy: egressUrl, ca, ...spec });

  it("injects the route's header for the routed host and path, replacing the client's own", async () => {
    const r = await via({ url: `https://routed.test:${upPort}/api/items`, headers: [["Authorization", "Bearer client-made-up"]] });
    expect(r.status).toBe(200);
    const body = JSON.parse(r.body);
    expect(body.auth_sha256).toBe(sha(`Bearer ${TOKEN}`));
    expect(body.auth_count).toBe(1);
    expect(r.body).not.toContain(TOKEN);
  });

  it("leaves paths outside every prefix untouched", async () => {
    const r = await via({ url: `https://routed.test:${upPort}/public/x` });
    expect(JSON.parse(r.body).auth_sha256).toBeNull();
  });

  it("routes on the CONNECT target, never on a lying Host header", async () => {
    // Unrouted destination claiming to be the routed host: no credential, and the firewall pins Host.
    const r1 = await via({ url: `https://upstream.test:${upPort}/api/x`, headers: [["Host", "routed.test"]] });
    expect(r1.status).toBe(200);
    expect(JSON.parse(r1.body)).toMatchObject({ auth_sha256: null, host: `upstream.test:${upPort}` });
    // Routed destination with a Host header naming elsewhere: still the routed host.
    const r2 = await via({ url: `https://routed.test:${upPort}/api/x`, headers: [["Host", "upstream.test"]] });
    expect(JSON.parse(r2.body)).toMatchObject({ auth_sha256: sha(`Bearer ${TOKEN}`), host: `routed.test:${upPort}` });
  });

  it("answers 502 naming the missing env var, not a value", async () => {
    const r = await via({ url: `https://routed.test:${upPort}/api/missing/x` });
    expect(r.status).toBe(502);
    expect(r.body).toMatch(/env var NOT_SET is not set in the egress sidecar/);
  });

  it("passes the firewall's refusals through egress, readable", async () => {
    const https = await via({ url: "https://evil.test/" });
    expect(https).toMatchObject({ status: 403, phase: "connect" });
    expect(https.body).toContain('bot-bottle firewall: blocked by allowlist: host "evil.test" is not in the allowlist');
    const plain = await via({ url: "http://evil.test/x" });
    expect(plain.status).toBe(403);
    expect(plain.body).toContain("blocked by allowlist");
    // A routed host the firewall refuses: egress's own tunnel is refused, and the agent reads why.
    const routedRefused = await via({ url: "https://not-allowed.test/x" });
    expect(routedRefused.status).toBe(403);
    expect(routedRefused.body).toContain('blocked by allowlist: host "not-allowed.test" is not in the allowlist');
    const rebind = await via({ url: `https://rebind.test:${upPort}/` });
    expect(rebind.status).toBe(403);
    expect(rebind.body).toMatch(/blocked by ssrf: host "rebind.test" resolves to the private address 10\.9\.9\.9/);
  });

  it("refuses secrets in intercepted HTTPS bodies and logs no secret", async () => {
    const secret = SECRET_SAMPLES["github-token"]!;
    const r = await via({ url: `https://upstream.test:${upPort}/upload`, method: "POST", body: JSON.stringify({ t: Buffer.from(secret).toString("base64") }) });
    expect(r.status).toBe(403);
    expect(r.body).toMatch(/blocked by dlp: .*body carries a GitHub token \(base64\)/);
    const leaked = await via({ url: `https://upstream.test:${upPort}/x?k=${encodeURIComponent(TOKEN)}` });
    expect(leaked.status).toBe(403);
    expect(leaked.body).toMatch(/url carries the value of TOKEN/);
    const all = logs.join("");
    expect(all).not.toContain(secret);
    expect(all).not.toContain(TOKEN);
    expect(all).toContain('"dlp_rule":"github-token"');
  });

  it("reloads the allowlist on request and refuses a broken file", async () => {
    await writeFile(`${firewallFile}.tmp`, JSON.stringify({ ...firewallConfig, allow: ["routed.test", "rebind.test"] }));
    await rename(`${firewallFile}.tmp`, firewallFile);
    await firewallState.reload();
    expect((await via({ url: `https://upstream.test:${upPort}/` })).status).toBe(403);
    await writeFile(`${firewallFile}.tmp`, "{ broken");
    await rename(`${firewallFile}.tmp`, firewallFile);
    await firewallState.reload();
    expect(reloads.at(-1)).toMatch(/not valid JSON/);
    expect((await via({ url: `https://upstream.test:${upPort}/` })).status).toBe(403);
    expect((await via({ url: `https://routed.test:${upPort}/api/x` })).status).toBe(200);
  });

  it("answers /health directly", async () => {
    const res = await fetch(`${firewallUrl}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ok", mode: "firewall" });
  });
});
