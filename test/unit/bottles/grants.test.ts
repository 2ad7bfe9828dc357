// Approving a grant = store it, re-plan, re-render, atomic write, SIGHUP;
// withdrawing it when its time is up happens in the core, without an MCP
// server. Against the in-memory engine.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { decide } from "../../../src/bottles/decide.js";
import { listBottles } from "../../../src/bottles/list.js";
import { startBottle } from "../../../src/bottles/start.js";
import { readAudit, writeProposal } from "../../../src/contracts/queue.js";
import { readGrants, writeGrants } from "../../../src/state/grants.js";
import { layoutOf } from "../../../src/state/layout.js";
import { MANIFEST, world } from "./fixture.js";

async function running(manifest = MANIFEST) {
  const w = world(manifest);
  await startBottle({ ...w.ctx, profile: "web", slug: "web-1" });
  return { ...w, l: layoutOf(w.root, "web-1") };
}

const firewallConfig = (file: string) => JSON.parse(readFileSync(file, "utf8")) as { allow: string[] };

describe("grants through the plan", () => {
  it("approving a domain re-renders the firewall config, signals the firewall and updates the agent's view", async () => {
    const w = await running();
    const p = await writeProposal(w.l.queueDir, { kind: "domain", target: "extra.test", reason: "docs" });
    const r = await decide({ ...w.ctx, slug: "web-1", id: p.id, verdict: "approved" });
    expect(r.applied).toBe(true);
    expect(firewallConfig(w.l.firewallConfigFile).allow).toEqual(["api.anthropic.com", "api.github.com", "extra.test"]);
    expect(w.engine.signals).toEqual([{ project: "bottle-web-1", service: "firewall", sig: "HUP" }]);
    const access = JSON.parse(readFileSync(w.l.accessFile, "utf8")) as { domains: string[]; grants: Array<{ target: string }> };
    expect(access.domains).toContain("extra.test");
    expect(access.grants.map((g) => g.target)).toEqual(["extra.test"]);
  });

  it("approving a ref re-renders the git gate's policy and signals it", async () => {
    const w = await running();
    const p = await writeProposal(w.l.queueDir, { kind: "git_ref", target: "refs/heads/feature/*", reason: "r" });
    await decide({ ...w.ctx, slug: "web-1", id: p.id, verdict: "approved" });
    const gate = JSON.parse(readFileSync(w.l.gitGateConfigFile, "utf8")) as { upstreams: Array<{ policy: { push_refs: string[] } }> };
    expect(gate.upstreams[0]!.policy.push_refs).toEqual(["refs/heads/agent/*", "refs/heads/feature/*"]);
    expect(w.engine.signals.map((s) => s.service)).toEqual(["git-gate"]);
  });

  it("a grant past its TTL is withdrawn by listing bottles (no MCP server), and the firewall signalled again", async () => {
    const w = await running();
    const before = readFileSync(w.l.firewallConfigFile, "utf8");
    const p = await writeProposal(w.l.queueDir, { kind: "domain", target: "brief.test", reason: "r" });
    await decide({ ...w.ctx, slug: "web-1", id: p.id, verdict: "approved", ttlSeconds: 60 });
    expect(firewallConfig(w.l.firewallConfigFile).allow).toContain("brief.test");
    // Time passes: the grant's expiry is now in the past.
    await writeGrants(
      w.l,
      (await readGrants(w.l)).map((g) => ({ ...g, expiresAt: "2000-01-01T00:00:00.000Z" })),
    );
    await listBottles(w.ctx);
    expect(readFileSync(w.l.firewallConfigFile, "utf8")).toBe(before);
    expect(await readGrants(w.l)).toEqual([]);
    expect(w.engine.signals.map((s) => s.service)).toEqual(["firewall", "firewall"]);
    expect((await readAudit(w.l.queueDir)).map((e) => e.event)).toContain("expired");
  });

  it("a sidecar that refuses the new config: the decision fails, grants.json and the config are as before", async () => {
    const w = await running();
    const before = readFileSync(w.l.firewallConfigFile, "utf8");
    w.engine.onSignal = () => '{"event":"config_reload_refused"}';
    const p = await writeProposal(w.l.queueDir, { kind: "domain", target: "extra.test", reason: "r" });
    await expect(decide({ ...w.ctx, slug: "web-1", id: p.id, verdict: "approved" })).rejects.toThrow("bottle-firewall-web-1 refused the new config");
    expect(await readGrants(w.l)).toEqual([]);
    expect(readFileSync(w.l.firewallConfigFile, "utf8")).toBe(before);
    expect((await readAudit(w.l.queueDir)).map((e) => e.event)).toContain("apply_failed");
  });

  // Pipelock's config also lists the bottle's own subnet (ssrf.ip_allowlist), but that is not the profile's: a grant there is refused on both engines.
  it.each(["builtin", "pipelock"] as const)("refuses an IP grant inside the bottle's own internal subnet (%s firewall)", async (fw) => {
    const w = await running(MANIFEST.replace("version: 1\n", `version: 1\ndefaults:\n  firewall: ${fw}\n`));
    const meta = JSON.parse(readFileSync(w.l.metadataFile, "utf8")) as { firewall: string; networks: Array<{ subnet: string; internal: boolean }> };
    expect(meta.firewall).toBe(fw);
    const inside = meta.networks.find((n) => n.internal)!.subnet.replace(/0\/24$/, "5");
    const p = await writeProposal(w.l.queueDir, { kind: "domain", target: inside, reason: "r" });
    await expect(decide({ ...w.ctx, slug: "web-1", id: p.id, verdict: "approved", force: true })).rejects.toThrow(`cannot approve ${p.id}`);
    expect(w.engine.signals).toEqual([]);
  });
});
