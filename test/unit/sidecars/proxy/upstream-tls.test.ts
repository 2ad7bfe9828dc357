// An upstream whose certificate the firewall rejects gets a 502 that says
// what happened and what to do (a network that re-signs TLS needs
// `network.trust`), with the OpenSSL code kept in the reason and the log.
// In-process firewall on loopback, HTTPS upstreams we start here.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReloadableState } from "../../../../src/sidecars/proxy/config-file.js";
import { buildFirewallState, createFirewall } from "../../../../src/sidecars/proxy/firewall.js";
import { createEventLog } from "../../../../src/sidecars/kit/log.js";
import type { ProxyServer } from "../../../../src/sidecars/proxy/proxy-server.js";
import { upstreamFailure } from "../../../../src/sidecars/proxy/upstream-tls.js";
import { send } from "../../../fixtures/proxy/client.js";
import { createTestCa, writePem } from "../../../helpers/proxy/ca.js";

const NAMES: Record<string, string> = { "resigned.test": "127.0.0.1", "trusted.test": "127.0.0.1", "misnamed.test": "127.0.0.1" };

describe("the firewall's 502 for an upstream certificate it rejects", () => {
  let dir: string;
  let firewall: ProxyServer<unknown>;
  let firewallUrl: string;
  let fwCaFile: string;
  const servers: Server[] = [];
  const ports: Record<string, number> = {};
  const logs: string[] = [];

  const serve = async (name: string, cert: string, key: string) => {
    const s = createServer({ cert, key }, (_req, res) => res.end("ok\n"));
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    servers.push(s);
    ports[name] = (s.address() as AddressInfo).port;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "upstream-tls-"));
    // "corp" stands for a company proxy's CA that re-signs TLS: the firewall does not trust it.
    const [fwCa, trustedCa, corpCa] = await Promise.all([createTestCa("fw"), createTestCa("trusted"), createTestCa("corp")]);
    const fwFiles = await writePem(join(dir, "fw-ca"), fwCa);
    const trustedFiles = await writePem(join(dir, "trusted-ca"), trustedCa);
    fwCaFile = fwFiles.cert;
    const resigned = await corpCa.issue(["resigned.test"]);
    const trusted = await trustedCa.issue(["trusted.test"]);
    // The chain includes the root, as an intercepting proxy sends it: SELF_SIGNED_CERT_IN_CHAIN.
    await serve("resigned.test", `${resigned.cert.trim()}\n${corpCa.cert.trim()}\n`, resigned.key);
    await serve("trusted.test", trusted.cert, trusted.key);
    await serve("misnamed.test", trusted.cert, trusted.key);

    const file = join(dir, "firewall.json");
    await writeFile(
      file,
      JSON.stringify({
        version: 1,
        allow: Object.keys(NAMES),
        allow_cidrs: ["127.0.0.0/8"],
        intercept: { enabled: true, ca_cert: fwFiles.cert, ca_key: fwFiles.key, passthrough: [] },
        dlp: { enabled: true, canary_env: [], canary_exempt: [] },
        upstream_ca_files: [trustedFiles.cert],
      }),
    );
    const log = createEventLog("firewall", (l) => logs.push(l));
    const resolver = async (name: string) => {
      const a = NAMES[name];
      if (!a) throw Object.assign(new Error("not found"), { code: "ENOTFOUND" });
      return [a];
    };
    const state = await ReloadableState.create(
      () => buildFirewallState(file, {}, log, resolver),
      () => {},
    );
    firewall = createFirewall(state, log) as ProxyServer<unknown>;
    await firewall.listen(0, "127.0.0.1");
    firewallUrl = `http://127.0.0.1:${(firewall.server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await firewall?.close();
    for (const s of servers) s.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const get = (name: string) => send({ proxy: firewallUrl, url: `https://${name}:${ports[name]}/`, ca: [fwCaFile] });

  it("reaches an upstream whose CA it trusts", async () => {
    const r = await get("trusted.test");
    expect(r.status).toBe(200);
    expect(r.body).toBe("ok\n");
  });

  it("says the CA is not trusted and how to trust it, keeping the code", async () => {
    logs.length = 0;
    const r = await get("resigned.test");
    expect(r.status).toBe(502);
    expect(r.body).toContain('request to "resigned.test" failed');
    expect(r.body).toContain("the upstream's certificate is signed by a CA the firewall does not trust (SELF_SIGNED_CERT_IN_CHAIN)");
    expect(r.body).toContain("if your network re-signs TLS, add `network.trust: [system]` or the CA file to the profile");
    expect(logs.map((l) => JSON.parse(l) as Record<string, unknown>)).toContainEqual(
      expect.objectContaining({ host: "resigned.test", decision: "failed", error: "SELF_SIGNED_CERT_IN_CHAIN", status: 502 }),
    );
  });

  it("says when the certificate does not name the host", async () => {
    const r = await get("misnamed.test");
    expect(r.status).toBe(502);
    expect(r.body).toContain(`the upstream's certificate is not valid for "misnamed.test" (ERR_TLS_CERT_ALTNAME_INVALID)`);
  });
});

describe("upstreamFailure", () => {
  it("explains each kind of certificate failure and leaves other errors as they are", () => {
    for (const code of ["UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "DEPTH_ZERO_SELF_SIGNED_CERT"])
      expect(upstreamFailure("egress", "a.test", code)).toBe(
        `request to "a.test" failed: the upstream's certificate is signed by a CA the egress does not trust (${code}); if your network re-signs TLS, add \`network.trust: [system]\` or the CA file to the profile`,
      );
    expect(upstreamFailure("firewall", "a.test", "CERT_HAS_EXPIRED")).toMatch(
      /^request to "a\.test" failed: the upstream's certificate is expired or not yet valid \(CERT_HAS_EXPIRED\); check this machine's clock/,
    );
    expect(upstreamFailure("firewall", "a.test", "ECONNREFUSED")).toBe('request to "a.test" failed: ECONNREFUSED');
  });
});
