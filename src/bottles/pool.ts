// The warm pool (issue 13): a profile with `pool: N` keeps N bottles started
// and waiting, so a start of that profile claims one in a fraction of a cold
// start. A pooled bottle is an ordinary bottle under a pool slug
// (pool-<12 hex>), marked `pooled` in its metadata: nobody may exec into it
// or read from it (handle.ts), so nothing can be left in it for whoever
// claims it.
//
// A claim takes the pooled bottle's state dir by one rename onto the new
// slug's (the running containers' binds follow the directory, not its
// name), then prepares it again exactly as a cold start would: fresh CAs,
// every sidecar config, trust bundle, agent view, plan input and compose
// file, written over whatever the pool wrote; then the proxies reload
// (SIGHUP, confirmed through their ready files) and the git gate refetches.
// Containers and networks keep their pool names (Docker cannot relabel a
// container); metadata records that name as `instance`, and everything that
// talks to the engine uses it (context.ts projectOf/instanceOf).
//
// Credentials: a pooled bottle's proxies got the credential values of the
// process that filled the pool, as env at container creation (never a file).
// A claim must not hand out a bottle holding other values than the claimer
// would have given it, so for a profile that uses credentials (egress routes,
// forward_env, env_file) a claim checks a fingerprint of those values that
// only the filling process holds, in memory. Other processes start cold.
import { createHash, randomBytes } from "node:crypto";
import { promises as fs, readFileSync } from "node:fs";
import { logger } from "../log.js";
import { PACKAGE_VERSION } from "../package.js";
import { bottleLabelFilter, resolvePlan, type Plan } from "../plan/index.js";
import { renderBottle } from "../render/index.js";
import { acquireLock } from "../state/lock.js";
import { layoutOf } from "../state/layout.js";
import { knownSlugs } from "../state/lookup.js";
import { readMetadata, writeMetadata, type Metadata } from "../state/metadata.js";
import { projectOf, type Ctx } from "./context.js";
import { readPlanInput, type PlanInput } from "./plan-input.js";
import { createBottleCas, prepareStateDir } from "./prepare.js";
import { reload } from "./reconfigure.js";
import { toMetadata } from "./render.js";

export const POOL_SLUG_RE = /^pool-[0-9a-f]{12}$/;
export const newPoolSlug = () => `pool-${randomBytes(6).toString("hex")}`;

/** Fingerprints of the credential values each pooled bottle was started with, by its slug: this process only. */
const fingerprints = new Map<string, string>();

/**
 * What the bottle's credentials are, reduced to a hash held in memory: the
 * values of every env name the plan hands to a container, and the env file's
 * content. Undefined when the profile uses none (any process may claim).
 */
export function credentialFingerprint(plan: Plan, env: NodeJS.ProcessEnv): string | undefined {
  const names = [...new Set([...(plan.egress?.envNames ?? []), ...plan.firewall.canaryEnv, ...plan.agent.forwardEnv])].sort();
  const envFile = plan.agent.envFile;
  if (!names.length && !envFile) return undefined;
  const h = createHash("sha256").update(JSON.stringify(names.map((n) => [n, env[n] ?? null])));
  if (envFile) {
    try {
      h.update(readFileSync(envFile));
    } catch {
      h.update("(unreadable env file)");
    }
  }
  return h.digest("hex");
}

export function rememberFingerprint(slug: string, fp: string | undefined): void {
  if (fp !== undefined) fingerprints.set(slug, fp);
}

/** The parts of a plan input that make two bottles of a profile the same bottle (slug, names and subnets aside). */
function recipe(i: PlanInput): string {
  return JSON.stringify([i.profileName, i.profile, i.defaultFirewall, i.packageRoot, i.hostUser, i.envFileUsable ?? false]);
}

export interface PooledBottle {
  slug: string;
  meta: Metadata;
  input: PlanInput;
}

/**
 * The pooled bottles of this profile: `current` ones (running or starting,
 * made from the same recipe by this package version), oldest first, and
 * `stale` ones (an older manifest or package, or failed), which a fill stops.
 */
export async function pooledBottles(ctx: Ctx, input: PlanInput): Promise<{ current: PooledBottle[]; stale: string[] }> {
  const want = recipe(input);
  const current: PooledBottle[] = [];
  const stale: string[] = [];
  for (const slug of knownSlugs(ctx.root)) {
    if (!POOL_SLUG_RE.test(slug)) continue;
    const layout = layoutOf(ctx.root, slug);
    const meta = readMetadata(layout);
    if (!meta?.pooled || meta.profile !== input.profileName) continue;
    const pin = await readPlanInput(layout).catch(() => undefined);
    const live = meta.state === "running" || meta.state === "starting";
    if (live && pin && recipe(pin) === want && meta.packageVersion === PACKAGE_VERSION) current.push({ slug, meta, input: pin });
    else if (meta.state !== "starting") stale.push(slug);
  }
  return { current: current.sort((a, b) => a.meta.createdAt.localeCompare(b.meta.createdAt)), stale };
}

export interface Claimed {
  plan: Plan;
  metadata: Metadata;
  from: string;
}

/**
 * Claim a pooled bottle for `input.slug` (whose lock the caller holds and
 * whose state dir does not exist). Undefined when none fits: the caller
 * starts cold.
 */
export async function claimPooled(ctx: Ctx, input: PlanInput, manifest: string, engine: "compose" | "swarm" = "compose"): Promise<Claimed | undefined> {
  const want = credentialFingerprint(resolvePlan(input), ctx.env);
  const target = layoutOf(ctx.root, input.slug);
  for (const c of (await pooledBottles(ctx, input)).current) {
    if (c.meta.state !== "running" || (c.meta.engine ?? "compose") !== engine) continue;
    if (want !== undefined && fingerprints.get(c.slug) !== want) continue;
    // Every container still running (a pooled bottle whose sidecar died is left for cleanup).
    const found = await ctx.engine.list(bottleLabelFilter(c.slug, ctx.root));
    if (found.containers.length !== c.meta.services.length || found.containers.some((x) => x.state !== "running")) continue;
    const from = layoutOf(ctx.root, c.slug);
    const lock = await acquireLock(from).catch(() => undefined);
    if (!lock) continue; // being drained or claimed by someone else
    try {
      const still = readMetadata(from);
      if (!still?.pooled || still.state !== "running") continue;
      // The claim itself: one rename. The containers' binds follow the directory.
      await fs.rename(from.stateDir, target.stateDir);
    } catch (err) {
      logger.debug({ err: (err as Error).message, pooled: c.slug }, "could not claim pooled bottle");
      continue;
    } finally {
      await lock.release();
    }
    fingerprints.delete(c.slug);
    return finishClaim(ctx, { ...input, instance: c.slug, ...(c.input.subnets ? { subnets: c.input.subnets } : {}) }, manifest, c.slug, engine);
  }
  return undefined;
}

async function finishClaim(ctx: Ctx, input: PlanInput, manifest: string, from: string, engine: "compose" | "swarm"): Promise<Claimed> {
  const plan = resolvePlan(input);
  let meta: Metadata = { ...toMetadata(plan, manifest, "starting", new Date().toISOString()), ...(engine !== "compose" ? { engine } : {}) };
  await writeMetadata(plan.paths, meta);
  // Everything a cold start writes, written again: fresh CAs, configs, trust bundle, agent view.
  await prepareStateDir(plan, renderBottle(plan), input, createBottleCas(plan));
  const project = projectOf(meta);
  const confirms = plan.firewall.engine === "builtin";
  await Promise.all([
    reload(ctx.engine, project, plan.paths, "firewall", confirms),
    ...(plan.egress ? [reload(ctx.engine, project, plan.paths, "egress", true)] : []),
    // The git gate refetches from its upstreams (its copies are as old as the pool bottle).
    ...(plan.gitGate ? [ctx.engine.signal(project, "git-gate", "HUP")] : []),
  ]);
  meta = { ...meta, state: "running" };
  await writeMetadata(plan.paths, meta);
  return { plan, metadata: meta, from };
}

export interface FillResult {
  profile: string;
  started: string[];
  stopped: string[];
  waiting: number;
}

const filling = new Map<string, Promise<FillResult>>();

/**
 * Bring the pool of `input`'s profile to `size` waiting bottles: start the
 * missing ones (a few at a time), or stop the extra ones. One fill per
 * profile at a time in this process.
 */
export function fillPool(ctx: Ctx, input: PlanInput, size: number, start: (slug: string) => Promise<{ plan: Plan }>, stop: (slug: string) => Promise<unknown>): Promise<FillResult> {
  const key = `${ctx.root}\0${input.profileName}`;
  const running = filling.get(key);
  if (running) return running;
  const p = (async (): Promise<FillResult> => {
    const { current: have, stale } = await pooledBottles(ctx, input);
    const result: FillResult = { profile: input.profileName, started: [], stopped: [], waiting: have.length };
    // Bottles pooled from an older manifest or package are never claimed: they go; so do
    // the ones over the size. One claimed meanwhile is no longer ours to stop: skipped.
    for (const slug of [...stale, ...have.slice(size).map((b) => b.slug)]) {
      try {
        await stop(slug);
        fingerprints.delete(slug);
        result.stopped.push(slug);
      } catch (err) {
        logger.debug({ slug, err: (err as Error).message }, "pooled bottle not stopped (claimed meanwhile?)");
      }
    }
    const missing = Math.max(0, size - have.length);
    const batch = 4;
    for (let i = 0; i < missing; i += batch) {
      const slugs = Array.from({ length: Math.min(batch, missing - i) }, newPoolSlug);
      const done = await Promise.allSettled(
        slugs.map(async (slug) => {
          const r = await start(slug);
          rememberFingerprint(slug, credentialFingerprint(r.plan, ctx.env));
          return slug;
        }),
      );
      for (const d of done) {
        if (d.status === "fulfilled") result.started.push(d.value);
        else logger.warn({ profile: input.profileName, err: (d.reason as Error).message }, "could not start a pooled bottle");
      }
    }
    result.waiting = (await pooledBottles(ctx, input)).current.length;
    return result;
  })().finally(() => filling.delete(key));
  filling.set(key, p);
  return p;
}

/** Forget every fingerprint (what another process would know: nothing). For tests. */
export function forgetPoolFingerprints(): void {
  fingerprints.clear();
}
