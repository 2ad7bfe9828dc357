// start (SPEC §6): lock, state dir, networks, CAs and configs, compose up,
// wait for health. Any failure after the state dir exists rolls back so that
// nothing is left running, and says why with the tail of compose's stderr.
import { promises as fs } from "node:fs";
import { composeDown, composeUp } from "../engine/compose.js";
import { hostIsolationSupport, isolateBridge, releaseBridge } from "../engine/host-isolation.js";
import { createBottleNetworks, removeNetwork } from "../engine/networks.js";
import { lastLines } from "../engine/run.js";
import { BottleError, toBottleError } from "../errors.js";
import { logger } from "../log.js";
import { getProfile, loadManifest, manifestPath } from "../manifest/index.js";
import { BASELINE_ENGINE, DEFAULT_SUBNET_POOL, resolvePlan, type Plan } from "../plan/index.js";
import { defaultSlug, validateSlug } from "../state/slug.js";
import { renderBottle } from "../render/index.js";
import { packageRoot, stateRoot } from "../state/root.js";
import { summarize, type PlanSummary } from "./render.js";
import { failedServiceDetail } from "./failure.js";
import { engineFeatures } from "../engine/features.js";
import { ensureImages } from "../engine/images.js";
import { acquireLock } from "../state/lock.js";
import { readMetadata, writeMetadata, type Metadata } from "../state/metadata.js";
import { dumpLogs } from "./logs.js";
import { prepareStateDir } from "./prepare.js";

export type StartStep = "images" | "networks" | "prepare" | "up" | "health" | "done";

export interface StartOptions {
  profile: string;
  manifest?: string;
  slug?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  signal?: AbortSignal;
  onProgress?: (step: StartStep, message: string) => void;
}

export interface StartResult {
  summary: PlanSummary;
  metadata: Metadata;
}

export async function startBottle(o: StartOptions): Promise<StartResult> {
  const env = o.env ?? process.env;
  const progress = o.onProgress ?? (() => {});
  const file = manifestPath(o.manifest, env, o.cwd);
  const loaded = loadManifest(file);
  const profile = getProfile(loaded, o.profile);
  const slug = o.slug === undefined ? defaultSlug(o.profile) : validateSlug(o.slug);
  const root = stateRoot(env);
  const pool = env.BOTTLE_SUBNET_POOL ?? DEFAULT_SUBNET_POOL;
  let engine = BASELINE_ENGINE; // until the engine is asked, after the lock
  const planFor = (subnets?: { internal: string; egress: string }): Plan =>
    resolvePlan({ profileName: o.profile, profile, defaultFirewall: loaded.manifest.defaults.firewall, slug, stateRoot: root, packageRoot: packageRoot(), engine, ...(subnets ? { subnets } : {}) });
  const preview = planFor();

  await fs.mkdir(root, { recursive: true, mode: 0o700 });
  const lock = await acquireLock(root, slug);
  let plan = preview;
  let networksCreated = false;
  let meta: Metadata | undefined;
  try {
    const existing = readMetadata(preview.paths.metadataFile);
    if (existing && existing.state !== "stopped" && existing.state !== "failed") {
      throw new BottleError("conflict", `bottle "${slug}" already exists (${existing.state})`, `Stop it first (bottle_stop ${slug}) or choose another slug.`);
    }
    await fs.rm(preview.paths.stateDir, { recursive: true, force: true });
    await fs.mkdir(preview.paths.stateDir, { recursive: true, mode: 0o700 });
    await fs.chmod(preview.paths.stateDir, 0o700);
    const now = new Date().toISOString();
    meta = toMetadata(preview, file, "starting", now);
    await writeMetadata(preview.paths.metadataFile, meta);

    engine = await engineFeatures();
    progress("images", "checking sidecar images");
    await ensureImages(preview, (image) => progress("images", `building ${image}`), o.signal);

    progress("networks", "creating networks");
    const nets = await createBottleNetworks((subnets) => planFor(subnets).networks, pool, o.signal);
    networksCreated = true;
    plan = planFor({ internal: nets.internal.subnet, egress: nets.egress.subnet });
    const isolation = await hostIsolationSupport(env);
    if (isolation.supported) await isolateBridge(plan.networks.internal.bridge);
    else logger.warn({ slug, reason: isolation.reason }, "host ports stay reachable from this bottle's agent (run `bottle doctor`)");

    progress("prepare", "writing CAs, sidecar configs and the compose file");
    await prepareStateDir(plan, renderBottle(plan));
    meta = toMetadata(plan, file, "starting", now);
    await writeMetadata(plan.paths.metadataFile, meta);

    progress("up", "docker compose up");
    // Secrets reach compose only through this subprocess's environment.
    await composeUp({ project: plan.project, file: plan.paths.composeFile }, { env: env as Record<string, string>, ...(o.signal ? { signal: o.signal } : {}) });
    progress("health", "all services healthy");

    meta = { ...meta, state: "running" };
    await writeMetadata(plan.paths.metadataFile, meta);
    progress("done", `bottle ${slug} is running`);
    return { summary: summarize(plan, file, false), metadata: meta };
  } catch (err) {
    let e = toBottleError(err);
    if (meta) e = await rollback(plan, meta, networksCreated, e);
    throw e;
  } finally {
    await lock.release();
  }
}

/** Take down what the start made; returns the error, with failed services' own reasons added. */
async function rollback(plan: Plan, meta: Metadata, networksCreated: boolean, e: BottleError): Promise<BottleError> {
  logger.warn({ slug: plan.slug, err: e.message }, "start failed; rolling back");
  const p = { project: plan.project, file: plan.paths.composeFile };
  const composeExists = await fs.stat(p.file).then(() => true, () => false);
  if (composeExists) {
    const detail = await failedServiceDetail(p).catch(() => undefined);
    if (detail) e = new BottleError(e.code, `${e.message}\n${detail}`, e.hint);
    await dumpLogs(meta, plan.paths.stateDir).catch(() => {});
    await composeDown(p, { reject: false }).catch(() => {});
  }
  if (networksCreated) {
    await removeNetwork(plan.networks.internal.name, plan.networks.egress.name).catch(() => {});
    await releaseBridge(plan.networks.internal.bridge).catch(() => {});
  }
  await writeMetadata(plan.paths.metadataFile, { ...meta, state: "failed", error: lastLines(e.message, 20) }).catch(() => {});
  return e;
}

export function toMetadata(plan: Plan, manifest: string, state: Metadata["state"], createdAt: string): Metadata {
  const s = summarize(plan, manifest, false);
  return {
    slug: plan.slug,
    profile: plan.profile,
    project: plan.project,
    composeFile: plan.paths.composeFile,
    manifest,
    networks: s.networks,
    services: s.services,
    firewall: plan.firewall.engine,
    packageVersion: plan.packageVersion,
    createdAt,
    updatedAt: createdAt,
    state,
    ownerPid: process.pid,
    cloneUrls: s.cloneUrls,
  };
}
