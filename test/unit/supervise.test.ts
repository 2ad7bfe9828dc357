import { mkdtempSync, writeFileSync, appendFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { describe, expect, it } from "vitest";
import { renderEgressConfig, renderFirewallConfig, renderPipelockConfig } from "../../src/render/index.js";
import { effectiveConfigs, grantProblem, type BaseConfigs, type Grant } from "../../src/supervise/grants.js";
import { audit, ensureQueue, listProposals, readAudit, validateTarget, writeProposal, type Proposal } from "../../src/supervise/queue.js";
import { planOf } from "../fixtures/shapes.js";

const baseOf = (shape: "egress" | "everything"): BaseConfigs => {
  const plan = planOf(shape, shape === "egress" ? {} : { defaultFirewall: "builtin" });
  return { engine: "builtin", firewall: renderFirewallConfig(plan), egress: renderEgressConfig(plan)!, egressEnv: plan.egress!.envNames };
};
const proposal = (p: Partial<Proposal>): Proposal => ({ id: "p-000000000001", kind: "domain", target: "x.test", reason: "r", createdAt: "2026-01-01T00:00:00Z", ...p });
const grant = (g: Partial<Grant>): Grant => ({ id: "p-000000000001", kind: "domain", target: "x.test", grantedAt: "2026-01-01T00:00:00Z", ...g });

describe("supervise grants", () => {
  it("adds granted domains and routes on top of the base configs", () => {
    const eff = effectiveConfigs(baseOf("egress"), [grant({ target: "extra.test" }), grant({ id: "p-000000000002", kind: "egress_route", target: "api.new.test", route: { path_prefix: "/v2/", header: "Authorization", value: "Bearer ${GITHUB_TOKEN}" } })], new Date(0));
    const fw = eff.firewall as ReturnType<typeof renderFirewallConfig>;
    expect(fw.allow).toEqual(["api.anthropic.com", "*.npmjs.org", "api.github.com", "extra.test", "api.new.test"]);
    expect(fw.intercept.passthrough).toEqual(["api.github.com", "api.new.test"]);
    expect(fw.dlp.canary_exempt).toContainEqual({ host: "api.new.test", header: "Authorization", env: "GITHUB_TOKEN" });
    expect(eff.egress!.routes.at(-1)).toEqual({ name: "grant-p-000000000002", host: "api.new.test", path_prefix: "/v2/", header: "Authorization", value: "Bearer ${GITHUB_TOKEN}" });
    expect(eff.access.routes.map((r) => r.name)).toEqual(["api.github.com/repos/acme/", "grant-p-000000000002"]);
    expect(JSON.stringify(eff.access)).not.toContain("${GITHUB_TOKEN}");
  });

  it("withdrawing a grant gives back exactly the base", () => {
    const base = baseOf("egress");
    expect(effectiveConfigs(base, [], new Date(0)).firewall).toEqual(base.firewall);
    expect(effectiveConfigs(base, [], new Date(0)).egress).toEqual(base.egress);
  });

  it("extends pipelock's allowlist and passthrough too", () => {
    const plan = planOf("minimal", { defaultFirewall: "pipelock" });
    const eff = effectiveConfigs({ engine: "pipelock", firewall: renderPipelockConfig(plan), egressEnv: [] }, [grant({ target: "extra.test" })], new Date(0));
    expect((eff.firewall as { api_allowlist: string[] }).api_allowlist).toEqual(["api.anthropic.com", "extra.test"]);
  });

  it("refuses routes whose credential egress does not hold, and routes without egress", () => {
    const route = { path_prefix: "/", header: "Authorization", value: "Bearer ${OTHER}" };
    expect(grantProblem(proposal({ kind: "egress_route", target: "a.test", route }), baseOf("egress"))).toContain("$OTHER, which the profile does not forward to egress (it forwards: GITHUB_TOKEN)");
    expect(grantProblem(proposal({ kind: "egress_route", target: "a.test", route: { ...route, value: "Bearer ${GITHUB_TOKEN}" } }), baseOf("egress"))).toBeUndefined();
    expect(grantProblem(proposal({ kind: "egress_route", target: "a.test", route: { ...route, value: "literal" } }), baseOf("egress"))).toContain("must reference a credential env var");
    const noEgress: BaseConfigs = { engine: "builtin", firewall: renderFirewallConfig(planOf("minimal")), egressEnv: [] };
    expect(grantProblem(proposal({ kind: "egress_route", target: "a.test", route }), noEgress)).toContain("no egress sidecar");
  });

  it("checks targets per kind", () => {
    expect(validateTarget("domain", "*.ok.test")).toBeUndefined();
    expect(validateTarget("domain", "http://x")).toContain("hostname");
    expect(validateTarget("git_ref", "refs/heads/agent/*")).toBeUndefined();
    expect(validateTarget("git_ref", "main")).toContain("ref pattern");
    expect(validateTarget("egress_route", "*.x.test")).toContain("hostname");
  });
});

describe("supervise queue", () => {
  it("skips torn proposals, temp files and torn audit lines, and keeps appending after them", async () => {
    const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-queue-"));
    await ensureQueue(dir);
    const p = await writeProposal(dir, { kind: "domain", target: "a.test", reason: "why" });
    writeFileSync(nodePath.join(dir, "proposals", "p-00000000beef.json"), '{"id":"p-00000000beef","ki');
    writeFileSync(nodePath.join(dir, "proposals", `.tmp-p-00000000cafe.json-1234`), "{");
    appendFileSync(nodePath.join(dir, "audit.jsonl"), '{"event":"torn');
    await audit(dir, "after", { id: p.id });
    expect((await listProposals(dir)).map((x) => x.id)).toEqual([p.id]);
    expect((await readAudit(dir)).map((e) => e.event)).toEqual(["proposed", "after"]);
  });
});
