// start (SPEC §6): lock, state dir, networks, CAs and configs, engine up,
// wait for health. Any failure after the state dir exists rolls back so that
// nothing is left running, and says why with the failed services' own words.
import { promises as fs } from "node:fs";
import { z } from "zod";
import { BottleError, toBottleError } from "../errors.js";
import { logger } from "../log.js";
import { packageRoot } from "../package.js";
import { bottleLabelFilter, cloneUrlSchema, DEFAULT_SUBNET_POOL, networkSummarySchema, resolvePlan, type Plan, type PlanSummary, type Subnets } from "../plan/index.js";
import { renderBottle } from "../render/index.js";
import { acquireLock } from "../state/lock.js";
import { BOTTLE_STATES, readMetadata, writeMetadata, type Metadata } from "../state/metadata.js";
import { ensureRoot } from "../state/root.js";
import { defaultSlug, validateSlug } from "../state/slug.js";
import { lastLines } from "../engine/run.js";
import { contextOf, instanceOf, projectOf, withEngine, type Ctx, type CtxInput } from "./context.js";
import { failedServiceDetail } from "./failure.js";
import { dumpLogs } from "./logs.js";
import { allocateNetworks } from "./networks.js";
import { readPlanInput, type PlanInput } from "./plan-input.js";
import { claimPooled, fillPool, newPoolSlug, POOL_SLUG_RE, type FillResult } from "./pool.js";
import { MAX_POOL, type BottleEngineKind, type Profile } from "../manifest/index.js";
import { stopBottle, takeDown } from "./stop.js";
import { layoutOf } from "../state/layout.js";
import { createBottleCas, prepareStateDir } from "./prepare.js";
import { waitReady } from "./readiness.js";
import { envFileUsable, hostUser, loadProfile } from "./profile.js";
import { summarize, toMetadata } from "./render.js";

export type StartStep = "images" | "networks" | "prepare" | "up" | "health" | "done";

export interface StartOptions extends CtxInput {
  profile: string;
  manifest?: string;
  slug?: string;
  cwd?: string;
  signal?: AbortSignal;
  onProgress?: (step: StartStep, message: string) => void;
  /** How long sidecars may take to say they are ready (default READY_TIMEOUT_MS). */
  readyTimeoutMs?: number;
  /** Start it as a warm-pool bottle (pool.ts): internal, with a pool slug. */
  pooled?: boolean;
  /** Never claim from the warm pool (benchmarks of the cold path, tests). */
  cold?: boolean;
  /** After the start, refill the profile's warm pool in the background (long-lived processes: the MCP server). */
  refillPool?: boolean;
}

export interface StartResult {
  summary: PlanSummary;
  metadata: Metadata;
}

/** What bottle_start returns as structuredContent and `bottle start --json` prints. */
export const startOutputSchema = z.object({
  slug: z.string(),
  project: z.string(),
  state: z.enum(BOTTLE_STATES),
  services: z.array(z.string()),
  agentProxy: z.string(),
  cloneUrls: z.array(cloneUrlSchema),
  networks: z.array(networkSummarySchema),
  stateDir: z.string(),
});
export type StartOutput = z.output<typeof startOutputSchema>;

export const startOutput = (r: StartResult): StartOutput => ({
  slug: r.summary.slug,
  project: r.summary.project,
  state: r.metadata.state,
  services: r.summary.services.map((s) => s.service),
  agentProxy: r.summary.agentProxy,
  cloneUrls: r.summary.cloneUrls,
  networks: r.summary.networks,
  stateDir: r.summary.stateDir,
});

/** The profile as loaded, the plan input a start of it resolves from, and the engine it runs on. */
function startInput(ctx: Ctx, o: Pick<StartOptions, "profile" | "manifest" | "cwd">, slug: string): { file: string; profile: Profile; input: PlanInput; engine: BottleEngineKind } {
  const { file, loaded, profile } = loadProfile(ctx.env, o.profile, o.manifest, o.cwd);
  // The profile's engine, else the manifest's default, else BOTTLE_ENGINE's, else compose.
  const engine = profile.engine ?? loaded.manifest.defaults.engine ?? (ctx.env.BOTTLE_ENGINE === "swarm" ? "swarm" : "compose");
  const input: PlanInput = {
    slug,
    profileName: o.profile,
    profile,
    defaultFirewall: loaded.manifest.defaults.firewall,
    stateRoot: ctx.root,
    packageRoot: packageRoot(),
    hostUser: hostUser(),
    envFileUsable: envFileUsable(profile),
  };
  return { file, profile, input, engine };
}

export interface PoolOptions extends CtxInput {
  profile: string;
  manifest?: string;
  cwd?: string;
  /** Waiting bottles wanted (default: the profile's `pool`); 0 drains the pool. */
  size?: number;
}

/** `bottle pool`: bring a profile's warm pool to its size (or `size`), starting or stopping pooled bottles. */
export async function poolBottles(o: PoolOptions): Promise<FillResult> {
  const base = contextOf(o);
  const { file, profile, input, engine } = startInput(base, o, newPoolSlug());
  const ctx = withEngine(base, engine);
  const size = o.size ?? profile.pool;
  if (!Number.isInteger(size) || size < 0 || size > MAX_POOL) throw new BottleError("bad-input", `pool size must be a whole number from 0 to ${MAX_POOL}`);
  if (size > 0 && (profile.firewall ?? input.defaultFirewall) !== "builtin") {
    throw new BottleError("bad-input", `profile "${o.profile}" uses the pipelock firewall, which cannot take a fresh CA without a restart; the warm pool needs the builtin firewall`);
  }
  await ensureRoot(ctx.root);
  return fillProfilePool(ctx, input, size, file);
}

export async function startBottle(o: StartOptions): Promise<StartResult> {
  const progress = o.onProgress ?? (() => {});
  const slug = o.slug === undefined ? defaultSlug(o.profile) : validateSlug(o.slug);
  if (!o.pooled && POOL_SLUG_RE.test(slug)) throw new BottleError("bad-input", `slug "${slug}" is reserved for the warm pool`, "Choose another slug.");
  const base = contextOf(o);
  const { file, profile, input: first, engine } = startInput(base, o, slug);
  const ctx = withEngine(base, engine);
  let input = first;
  const pool = ctx.env.BOTTLE_SUBNET_POOL ?? DEFAULT_SUBNET_POOL;
  const planFor = (subnets?: Subnets): Plan => resolvePlan({ ...input, ...(subnets ? { subnets } : {}) });
  const preview = planFor();
  const layout = preview.paths;

  await ensureRoot(ctx.root);
  const lock = await acquireLock(layout);
  const done: Rollback = { plan: preview, networks: false, isolated: false };
  let meta: Metadata | undefined;
  try {
    const existing = readMetadata(layout);
    if (existing && existing.state !== "stopped" && existing.state !== "failed") {
      throw new BottleError("conflict", `bottle "${slug}" already exists (${existing.state})`, `Stop it first (bottle_stop ${slug}) or choose another slug.`);
    }
    await fs.rm(layout.stateDir, { recursive: true, force: true });
    // The warm pool needs the builtin firewall (pipelock cannot take a fresh CA without a restart).
    const poolable = profile.pool > 0 && preview.firewall.engine === "builtin" && !o.pooled;
    if (poolable && !o.cold) {
      const claimed = await claimPooled(ctx, input, file, engine).catch((err: unknown) => {
        logger.warn({ slug, err: (err as Error).message }, "claiming from the warm pool failed; starting cold");
        return "failed" as const;
      });
      if (claimed === "failed") {
        // What the failed claim took now sits under this slug (we hold its lock): take it down, then start cold.
        const taken = readMetadata(layout);
        if (taken) await takeDown(ctx, layout, taken, projectOf(taken), true).catch(() => {});
        await fs.rm(layout.stateDir, { recursive: true, force: true });
      } else if (claimed) {
        progress("done", `bottle ${slug} is running (claimed from the warm pool)`);
        if (o.refillPool) refillInBackground(ctx, input, profile.pool, file);
        return { summary: summarize(claimed.plan, file, false), metadata: claimed.metadata };
      }
    }
    await fs.mkdir(layout.stateDir, { recursive: true, mode: 0o700 });
    await fs.chmod(layout.stateDir, 0o700);
    const now = new Date().toISOString();
    meta = { ...toMetadata(preview, file, "starting", now), ...(engine !== "compose" ? { engine } : {}), ...(o.pooled ? { pooled: true } : {}) };
    await writeMetadata(layout, meta);

    // Fresh CAs for this bottle, made while the engine is asked and networks are created.
    const cas = createBottleCas(preview);
    cas.catch(() => {}); // awaited in prepare; a failure before that must not be an unhandled rejection
    // Images and networks do not depend on each other: both at once. Both
    // settle before an error goes on, so the rollback sees every network made.
    progress("images", "checking sidecar images");
    progress("networks", "creating networks");
    // From here the rollback removes both networks (their names are the
    // slug's): removing a network that was never made is fine. Creates are
    // never interrupted (allocateNetworks), so none completes after it.
    done.networks = true;
    const [images, networks, isolationCheck] = await Promise.allSettled([
      ctx.engine.ensureImages(planFor(), (image) => progress("images", `building ${image}`), o.signal),
      allocateNetworks(ctx.engine, (subnets) => planFor(subnets).networks, pool, o.signal),
      ctx.engine.isolation(),
    ]);
    if (images.status === "rejected") throw images.reason;
    if (networks.status === "rejected") throw networks.reason;
    if (isolationCheck.status === "rejected") throw isolationCheck.reason;
    const nets = networks.value;
    input = { ...input, subnets: { internal: nets.internal.subnet, egress: nets.egress.subnet } };
    const plan = planFor(input.subnets);
    done.plan = plan;
    const isolation = isolationCheck.value;
    if (isolation.supported) {
      done.isolated = true;
      await ctx.engine.isolate(plan.networks.internal.bridge);
    } else logger.warn({ slug, reason: isolation.reason }, "host ports stay reachable from this bottle's agent (run `bottle doctor`)");

    progress("prepare", "writing CAs, sidecar configs and the compose file");
    await prepareStateDir(plan, renderBottle(plan), input, cas);
    meta = { ...toMetadata(plan, file, "starting", now), ...(engine !== "compose" ? { engine } : {}), ...(o.pooled ? { pooled: true } : {}) };
    await writeMetadata(layout, meta);

    progress("up", "creating and starting containers");
    // Secrets reach the engine only through this call (compose: its subprocess env).
    const project = projectOf(meta);
    await ctx.engine.up(project, { env: ctx.env, containers: meta.services.map((s) => s.container), ...(o.signal ? { signal: o.signal } : {}) });
    await waitReady(ctx.engine, plan, project, { ...(o.signal ? { signal: o.signal } : {}), ...(o.readyTimeoutMs !== undefined ? { timeoutMs: o.readyTimeoutMs } : {}) });
    progress("health", "every sidecar is ready");

    meta = { ...meta, state: "running" };
    await writeMetadata(layout, meta);
    progress("done", `bottle ${slug} is running`);
    if (o.refillPool && poolable) refillInBackground(ctx, input, profile.pool, file);
    return { summary: summarize(plan, file, false), metadata: meta };
  } catch (err) {
    let e = toBottleError(err);
    if (meta) e = await rollback(ctx, done, meta, e);
    throw e;
  } finally {
    await lock.release();
  }
}

interface Rollback {
  plan: Plan;
  networks: boolean;
  isolated: boolean;
}

/** Take down what the start made; returns the error, with failed services' own reasons added. */
async function rollback(ctx: Ctx, done: Rollback, meta: Metadata, e: BottleError): Promise<BottleError> {
  const { plan } = done;
  logger.warn({ slug: plan.slug, err: e.message }, "start failed; rolling back");
  const leftovers: string[] = [];
  const left = (err: unknown) => {
    leftovers.push((err as Error).message);
    logger.warn({ slug: plan.slug, err: (err as Error).message }, "rollback step failed");
  };
  const p = projectOf({ slug: plan.slug, project: plan.project, composeFile: plan.paths.composeFile });
  const composeExists = await fs.stat(p.file).then(
    () => true,
    () => false,
  );
  if (composeExists) {
    const detail = await failedServiceDetail(ctx.engine, p).catch(() => undefined);
    if (detail) e = new BottleError(e.code, `${e.message}\n${detail}`, e.hint);
    await dumpLogs(ctx.engine, p, plan.paths).catch(() => {});
    await ctx.engine.down(p).catch(left);
  }
  if (done.networks) await ctx.engine.removeNetworks([plan.networks.internal.name, plan.networks.egress.name]).catch(left);
  // Then whatever else carries the bottle's labels: a cancelled `up` may have
  // had the engine create a container after compose stopped listening.
  await ctx.engine.removeAll(bottleLabelFilter(instanceOf(meta), ctx.root)).catch(left);
  if (done.isolated) await ctx.engine.release(plan.networks.internal.bridge).catch(left);
  // What the rollback could not take down stays named: the start's own error first, then this.
  if (leftovers.length) e = new BottleError(e.code, `${e.message}\nrollback left: ${leftovers.join("; ")}`, e.hint ?? "`bottle cleanup` removes what a failed start left.");
  await writeMetadata(plan.paths, { ...meta, state: "failed", error: lastLines(e.message, 20) }).catch(() => {});
  return e;
}

/** Refills under way, and what aborts them: a process that exits mid-refill would leave a half-started pooled bottle. */
const refills = new Set<Promise<unknown>>();
const refillAbort = new AbortController();

/** Top the profile's warm pool up again without holding anyone up; failures are logged. */
function refillInBackground(ctx: Ctx, input: PlanInput, size: number, manifest: string): void {
  const p = fillProfilePool(ctx, input, size, manifest, refillAbort.signal)
    .then((r) => logger.info({ profile: r.profile, started: r.started.length, waiting: r.waiting }, "warm pool refilled"))
    .catch((err: unknown) => logger.warn({ profile: input.profileName, err: (err as Error).message }, "warm pool refill failed"))
    .finally(() => refills.delete(p));
  refills.add(p);
}

/** Abort every background refill (their starts roll back) and wait up to `ms` for them; returns how many still run. */
export async function stopRefills(ms: number): Promise<number> {
  refillAbort.abort();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.allSettled([...refills]), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
  return refills.size;
}

/** Bring the warm pool of `input`'s profile to `size` bottles (pool.ts fillPool with the real start and stop). */
export function fillProfilePool(ctx: Ctx, input: PlanInput, size: number, manifest: string, signal?: AbortSignal): Promise<FillResult> {
  const start = async (slug: string) => {
    const r = await startBottle({ env: ctx.env, engine: ctx.engine, profile: input.profileName, manifest, slug, pooled: true, ...(signal ? { signal } : {}) });
    return { plan: resolvePlan(await readPlanInput(layoutOf(ctx.root, r.metadata.slug))) };
  };
  return fillPool(ctx, input, size, start, (slug) => stopBottle(slug, { env: ctx.env, engine: ctx.engine, purge: true }));
}
