// network.trust: [system]: the keyword in the manifest, the plan, the
// proxies' configs, and the host bundle read at start.
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startBottle } from "../../../src/bottles/start.js";
import { readSystemCaBundle } from "../../../src/bottles/system-trust.js";
import { BottleError } from "../../../src/errors.js";
import { parseManifest } from "../../../src/manifest/index.js";
import { renderEgressConfig, renderFirewallConfig } from "../../../src/render/index.js";
import { layoutOf, systemCaFile } from "../../../src/state/layout.js";
import { readMetadata } from "../../../src/state/metadata.js";
import { HOME, planOf } from "../../fixtures/shapes.js";
import { world } from "./fixture.js";

const profile = (trust: string) => `version: 1
agents:
  t:
    image: x
    network: { allow: [a.test], trust: ${trust} }
    egress:
      routes: [{ host: api.test, header: Authorization, value: "Bearer \${T}" }]
`;

describe("network.trust: [system]", () => {
  it("is a keyword beside paths: not resolved as a path, planned as trustSystem", () => {
    const plan = planOf(profile("[system, ./internal-ca.pem]"));
    expect(plan.firewall.trustSystem).toBe(true);
    expect(plan.firewall.trustFiles).toEqual(["/manifests/internal-ca.pem"]);
    expect(planOf(profile("[./internal-ca.pem]")).firewall.trustSystem).toBe(false);
  });

  it("a file named system is ./system", () => {
    const plan = planOf(profile("[./system]"));
    expect(plan.firewall.trustSystem).toBe(false);
    expect(plan.firewall.trustFiles).toEqual(["/manifests/system"]);
  });

  it("the firewall and egress trust the host store's copy in the trust dir", () => {
    const plan = planOf(profile("[./internal-ca.pem, system]"));
    expect(renderFirewallConfig(plan).upstream_ca_files).toEqual(["/etc/bottle/trust/upstream-ca-0.pem", "/etc/bottle/trust/system-ca.pem"]);
    expect(renderEgressConfig(plan)!.upstream_ca_files).toEqual(["/etc/bottle/trust/firewall-ca.pem", "/etc/bottle/trust/upstream-ca-0.pem", "/etc/bottle/trust/system-ca.pem"]);
    expect(systemCaFile(plan.paths)).toBe(nodePath.join(plan.paths.trustDir, "system-ca.pem"));
    expect(renderFirewallConfig(planOf(profile("[]"))).upstream_ca_files).toEqual([]);
  });

  it("refuses system twice", () => {
    expect(() => parseManifest(profile("[system, system]"), "bottle.yaml", HOME)).toThrow(/network\.trust: expected "system" at most once/);
  });
});

describe("readSystemCaBundle", () => {
  let dir: string;
  const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  beforeAll(async () => {
    dir = await mkdtemp(nodePath.join(tmpdir(), "system-trust-"));
    await writeFile(nodePath.join(dir, "second.pem"), PEM);
    await writeFile(nodePath.join(dir, "third.pem"), `${PEM}${PEM}`);
    await writeFile(nodePath.join(dir, "empty.pem"), "");
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  const at = (...names: string[]) => names.map((n) => nodePath.join(dir, n));

  it("reads the first bundle that exists", async () => {
    expect(await readSystemCaBundle(at("missing.pem", "second.pem", "third.pem"))).toBe(PEM);
  });

  it("says where it looked when the host has none", async () => {
    const err = await readSystemCaBundle(at("a.pem", "b.pem")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BottleError);
    expect((err as BottleError).message).toBe(`network.trust lists "system", but this host has no CA bundle (looked for ${at("a.pem", "b.pem").join(", ")})`);
    expect((err as BottleError).hint).toContain("CA file");
  });

  it("refuses a bundle without a certificate", async () => {
    await expect(readSystemCaBundle(at("empty.pem"))).rejects.toThrow(/holds no PEM certificate/);
  });
});

describe("start with network.trust: [system] (fake engine)", () => {
  it("copies the host's CA store into the trust dir the proxies mount, or fails clearly on a host without one", async () => {
    const w = world(`version: 1\nagents:\n  corp:\n    image: x\n    network: { allow: [a.test], trust: [system] }\n`);
    const host = await readSystemCaBundle().catch((e: unknown) => e as BottleError);
    const started = await startBottle({ ...w.ctx, profile: "corp", slug: "corp-1" }).catch((e: unknown) => e as BottleError);
    const l = layoutOf(w.root, "corp-1");
    if (host instanceof BottleError) {
      expect((started as BottleError).message).toContain(host.message);
      expect(readMetadata(l)?.state).toBe("failed");
      return;
    }
    expect(readMetadata(l)?.state).toBe("running");
    expect(readFileSync(systemCaFile(l), "utf8")).toBe(host);
    expect(JSON.parse(readFileSync(l.firewallConfigFile, "utf8")).upstream_ca_files).toEqual(["/etc/bottle/trust/system-ca.pem"]);
  });
});
