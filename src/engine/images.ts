// Our sidecar images are built locally from Dockerfile.<name> in the package
// root, tagged with the package version, and never pulled. Each image carries
// a label with the hash of what it was built from (the Dockerfile and the
// dist/ files it copies), so an image left over from older code with the
// same version is rebuilt rather than silently reused.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import nodePath from "node:path";
import { docker } from "./run.js";
import type { BuiltImage, Plan } from "../plan/index.js";

export const SOURCE_LABEL = "dev.bot-bottle.source";

const building = new Map<string, Promise<void>>();

export function builtImages(plan: Plan): BuiltImage[] {
  const all = [plan.firewall.build, plan.egress?.build, plan.gitGate?.build, plan.supervise?.build].filter((b): b is BuiltImage => b !== undefined);
  return [...new Map(all.map((b) => [b.image, b])).values()];
}

/** Hash of the Dockerfile and every dist/ file it copies. */
export function sourceHash(b: BuiltImage): string {
  const dockerfile = readFileSync(nodePath.join(b.context, b.dockerfile), "utf8");
  const h = createHash("sha256").update(dockerfile);
  for (const f of [...new Set(dockerfile.match(/\bdist\/[\w./-]+/g) ?? [])].sort()) h.update(f).update(readFileSync(nodePath.join(b.context, f)));
  return h.digest("hex").slice(0, 16);
}

async function builtFrom(image: string, signal?: AbortSignal): Promise<string | undefined> {
  const r = await docker(["image", "inspect", "--format", `{{index .Config.Labels "${SOURCE_LABEL}"}}`, image], { reject: false, timeout: 30_000, ...(signal ? { signal } : {}) });
  return r.exitCode === 0 ? r.stdout.trim() : undefined;
}

/** Build each missing or outdated image once, even when several starts ask at the same time. */
export async function ensureImages(plan: Plan, onBuild: (image: string) => void, signal?: AbortSignal): Promise<void> {
  await Promise.all(builtImages(plan).map((b) => ensureImage(b, onBuild, signal)));
  await ensureAgentImage(plan, onBuild, signal);
}

async function ensureImage(b: BuiltImage, onBuild: (image: string) => void, signal?: AbortSignal): Promise<void> {
  const hash = sourceHash(b);
  if ((await builtFrom(b.image, signal)) === hash) return;
  let p = building.get(b.image);
  if (!p) {
    onBuild(b.image);
    const args = ["build", "--pull=false", "-q", "--label", `${SOURCE_LABEL}=${hash}`, "-t", b.image, "-f", nodePath.join(b.context, b.dockerfile), b.context];
    p = docker(args, { timeout: 600_000, ...(signal ? { signal } : {}) }).then(() => undefined);
    building.set(b.image, p);
    p.finally(() => building.delete(b.image)).catch(() => {});
  }
  await p;
}

/**
 * A profile's own agent image (`build:` in the manifest). `compose up` runs
 * with --no-build, so without this a profile that builds its agent could
 * never start. Its context is the user's folder, which we do not hash:
 * docker's layer cache decides what to redo, and an unchanged build is a
 * cache hit that takes about a second.
 */
async function ensureAgentImage(plan: Plan, onBuild: (image: string) => void, signal?: AbortSignal): Promise<void> {
  const b = plan.agent.build;
  if (!b) return;
  const image = plan.agent.image;
  let p = building.get(image);
  if (!p) {
    onBuild(image);
    const dockerfile = nodePath.resolve(b.context, b.dockerfile ?? "Dockerfile");
    p = docker(["build", "--pull=false", "-q", "-t", image, "-f", dockerfile, b.context], { timeout: 1_800_000, ...(signal ? { signal } : {}) }).then(() => undefined);
    building.set(image, p);
    p.finally(() => building.delete(image)).catch(() => {});
  }
  await p;
}
