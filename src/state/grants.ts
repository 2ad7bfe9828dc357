// Host side of supervise: grants on top of the configs a bottle started with.
// The effective sidecar configs are always base + active grants, recomputed
// and written by temp-then-rename into the mounted directories, then the
// sidecar gets a SIGHUP and we wait until it says it reloaded.
import { promises as fs } from "node:fs";
import nodePath from "node:path";
import { z } from "zod";
import { docker } from "../engine/run.js";
import { BottleError } from "../errors.js";
import { writeFileAtomic } from "../contracts/atomic.js";
import { ENV_REF_RE } from "../manifest/schema.js";
import { toYaml } from "../render/yaml.js";
import type { EgressConfig } from "../contracts/egress.js";
import type { FirewallConfig } from "../contracts/firewall.js";
import type { GitGateConfig } from "../render/sidecar-configs.js";
import type { Access } from "../contracts/access.js";
import { FILES } from "../contracts/mounts.js";
import { assessProposal, credentialBindings, type AssessContext } from "../security/access-policy.js";
import type { Proposal } from "../contracts/queue.js";

export const grantSchema = z.object({
  id: z.string(),
  kind: z.enum(["domain", "egress_route", "git_ref", "other"]),
  target: z.string(),
  route: z.object({ path_prefix: z.string(), port: z.number().int().default(443), header: z.string(), value: z.string() }).optional(),
  grantedAt: z.string(),
  expiresAt: z.string().optional(),
});
export type Grant = z.output<typeof grantSchema>;

/** The configs a bottle started with, kept outside any mount (state dir `base/`). */
export interface BaseConfigs {
  engine: "builtin" | "pipelock";
  firewall: FirewallConfig | Record<string, unknown>;
  egress?: EgressConfig;
  gitGate?: GitGateConfig;
  /** Env names egress holds: the only credentials a granted route may use. */
  egressEnv: string[];
  /** `egress.credentials.<env>.hosts` from the manifest: more hosts a grant may send that credential to. */
  credentialHosts?: Record<string, string[]>;
}

export const basePaths = (stateDir: string) => ({ dir: nodePath.join(stateDir, "base"), file: nodePath.join(stateDir, "base", "configs.json"), grants: nodePath.join(stateDir, "grants.json") });

export async function writeBase(stateDir: string, base: BaseConfigs): Promise<void> {
  await fs.mkdir(basePaths(stateDir).dir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(basePaths(stateDir).file, JSON.stringify(base), 0o600);
}

export async function readBase(stateDir: string): Promise<BaseConfigs> {
  return JSON.parse(await fs.readFile(basePaths(stateDir).file, "utf8")) as BaseConfigs;
}

export async function readGrants(stateDir: string): Promise<Grant[]> {
  try {
    return z.array(grantSchema).parse(JSON.parse(await fs.readFile(basePaths(stateDir).grants, "utf8")));
  } catch {
    return [];
  }
}

export async function writeGrants(stateDir: string, grants: Grant[]): Promise<void> {
  await writeFileAtomic(basePaths(stateDir).grants, `${JSON.stringify(grants, null, 2)}\n`, 0o600);
}

/** What the approval policy knows about a bottle, from the configs it started with. */
export function policyContext(base: BaseConfigs): AssessContext {
  const routes = (base.egress?.routes ?? []).filter((r) => [...r.value.matchAll(ENV_REF_RE)].every((m) => base.egressEnv.includes(m[1]!)));
  return { bindings: credentialBindings(routes, base.credentialHosts), allowCidrs: baseAllowCidrs(base), egress: !!base.egress, gitGate: !!base.gitGate };
}

function baseAllowCidrs(base: BaseConfigs): string[] {
  if (base.engine === "builtin") return (base.firewall as FirewallConfig).allow_cidrs ?? [];
  return (base.firewall as { ssrf?: { ip_allowlist?: string[] } }).ssrf?.ip_allowlist ?? [];
}

/** Why a proposal cannot be granted as asked, or undefined if it can. */
export function grantProblem(p: Proposal, base: BaseConfigs): string | undefined {
  return assessProposal(p, policyContext(base)).refuse;
}

/** A grant is live until its expiry (a grant without one lasts until the bottle stops). */
export const isLive = (g: Pick<Grant, "expiresAt">, now: Date) => !g.expiresAt || Date.parse(g.expiresAt) > now.getTime();

const union = (a: string[], b: string[]) => [...new Set([...a, ...b])];

/** Pure: base + grants -> effective configs and the agent's view. */
export function effectiveConfigs(base: BaseConfigs, allGrants: Grant[], now: Date) {
  // A grant past its expiry is never rendered, whoever renders and whenever.
  const grants = allGrants.filter((g) => isLive(g, now));
  const domains = grants.filter((g) => g.kind === "domain").map((g) => g.target);
  const routes = grants.filter((g) => g.kind === "egress_route" && g.route).map((g) => ({ name: `grant-${g.id}`, host: g.target, port: g.route!.port, path_prefix: g.route!.path_prefix, header: g.route!.header, value: g.route!.value }));
  const refs = grants.filter((g) => g.kind === "git_ref").map((g) => g.target);
  const routedHosts = routes.map((r) => r.host);

  let firewall: FirewallConfig | Record<string, unknown>;
  if (base.engine === "builtin") {
    const fw = base.firewall as FirewallConfig;
    firewall = {
      ...fw,
      allow: union(fw.allow, [...domains, ...routedHosts]),
      intercept: { ...fw.intercept, passthrough: union(fw.intercept.passthrough, routedHosts) },
      dlp: { ...fw.dlp, canary_exempt: [...fw.dlp.canary_exempt, ...routes.flatMap((r) => [...r.value.matchAll(ENV_REF_RE)].map((m) => ({ host: r.host, header: r.header, env: m[1]! })))] },
    };
  } else {
    const pl = base.firewall as { api_allowlist: string[]; tls_interception: { passthrough_domains: string[] } };
    const allow = union(pl.api_allowlist.filter((d) => d !== "nothing-allowed.invalid"), [...domains, ...routedHosts]);
    firewall = { ...pl, api_allowlist: allow.length ? allow : pl.api_allowlist, tls_interception: { ...pl.tls_interception, passthrough_domains: union(pl.tls_interception.passthrough_domains, routedHosts) } };
  }
  const egress = base.egress ? { ...base.egress, routes: [...base.egress.routes, ...routes] } : undefined;
  const gitGate = base.gitGate ? { ...base.gitGate, upstreams: base.gitGate.upstreams.map((u) => ({ ...u, policy: { ...u.policy, push_refs: union(u.policy.push_refs, refs) } })) } : undefined;
  const access: Access = {
    domains: base.engine === "builtin" ? (firewall as FirewallConfig).allow : (firewall as { api_allowlist: string[] }).api_allowlist,
    routes: (egress?.routes ?? []).map((r) => ({ name: r.name, host: r.host, path_prefix: r.path_prefix, header: r.header })),
    git_refs: union(gitGate?.upstreams.flatMap((u) => u.policy.push_refs) ?? [], []),
    grants: grants.map((g) => ({ id: g.id, kind: g.kind, target: g.target, ...(g.expiresAt ? { expiresAt: g.expiresAt } : {}) })),
    cidrs: baseAllowCidrs(base),
    credentials: policyContext(base).bindings,
    updatedAt: now.toISOString(),
  };
  return { firewall, egress, gitGate, access };
}

export interface ApplyTarget {
  slug: string;
  stateDir: string;
}

/** Write the effective configs, SIGHUP the sidecars that changed, wait for them to reload. */
export async function applyGrants(t: ApplyTarget, grants: Grant[]): Promise<void> {
  const base = await readBase(t.stateDir);
  const eff = effectiveConfigs(base, grants, new Date());
  const jobs: Array<Promise<void>> = [];
  const fwFile = base.engine === "builtin" ? nodePath.join(t.stateDir, "firewall", "config.json") : nodePath.join(t.stateDir, "firewall", "pipelock.yaml");
  const fwText = base.engine === "builtin" ? `${JSON.stringify(eff.firewall, null, 2)}\n` : toYaml(eff.firewall as Record<string, unknown>);
  jobs.push(rewriteAndReload(fwFile, fwText, `bottle-firewall-${t.slug}`, base.engine === "builtin"));
  if (eff.egress) jobs.push(rewriteAndReload(nodePath.join(t.stateDir, "egress", "config.json"), `${JSON.stringify(eff.egress, null, 2)}\n`, `bottle-egress-${t.slug}`, true));
  if (eff.gitGate) jobs.push(rewriteAndReload(nodePath.join(t.stateDir, "git-gate", "config.json"), `${JSON.stringify(eff.gitGate, null, 2)}\n`, `bottle-git-gate-${t.slug}`, false));
  await Promise.all(jobs);
  await writeFileAtomic(nodePath.join(t.stateDir, "access", FILES.access), `${JSON.stringify(eff.access, null, 2)}\n`, 0o644);
}

async function rewriteAndReload(file: string, text: string, container: string, confirm: boolean): Promise<void> {
  const current = await fs.readFile(file, "utf8").catch(() => "");
  if (current === text) return;
  await writeFileAtomic(file, text, 0o600);
  // Our proxies log config_reloaded / config_reload_refused after a SIGHUP;
  // count them in a window that starts before the signal, so an earlier
  // reload (or clock skew with a remote engine) cannot be mistaken for this one.
  const since = new Date(Date.now() - 5000).toISOString();
  const count = async () => {
    const r = await docker(["logs", "--since", since, container], { timeout: 15_000, reject: false });
    const out = r.stdout + r.stderr;
    return { ok: out.split('"config_reloaded"').length - 1, refused: out.split('"config_reload_refused"').length - 1 };
  };
  const before = confirm ? await count() : { ok: 0, refused: 0 };
  await docker(["kill", "--signal", "HUP", container], { timeout: 15_000 });
  if (!confirm) return;
  for (let i = 0; i < 50; i++) {
    const now = await count();
    if (now.refused > before.refused) throw new BottleError("internal", `${container} refused the new config; the grant was not applied`);
    if (now.ok > before.ok) return;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new BottleError("internal", `${container} did not confirm the reload within 2.5 s`);
}
