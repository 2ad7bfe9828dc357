// Our sidecar images are built locally from Dockerfile.<name> in the package
// root, tagged with the package version, and never pulled.
import { docker } from "../docker/run.js";
import type { BuiltImage, Plan } from "../plan/index.js";

const building = new Map<string, Promise<void>>();

export async function imageExists(image: string, signal?: AbortSignal): Promise<boolean> {
  const r = await docker(["image", "inspect", "--format", "{{.Id}}", image], { reject: false, timeout: 30_000, ...(signal ? { signal } : {}) });
  return r.exitCode === 0;
}

export function builtImages(plan: Plan): BuiltImage[] {
  const all = [plan.firewall.build, plan.egress?.build, plan.gitGate?.build, plan.supervise?.build].filter((b): b is BuiltImage => b !== undefined);
  return [...new Map(all.map((b) => [b.image, b])).values()];
}

/** Build each missing image once, even when several starts ask at the same time. */
export async function ensureImages(plan: Plan, onBuild: (image: string) => void, signal?: AbortSignal): Promise<void> {
  for (const b of builtImages(plan)) {
    if (await imageExists(b.image, signal)) continue;
    let p = building.get(b.image);
    if (!p) {
      onBuild(b.image);
      p = docker(["build", "--pull=false", "-q", "-t", b.image, "-f", `${b.context}/${b.dockerfile}`, b.context], { timeout: 600_000, ...(signal ? { signal } : {}) }).then(() => undefined);
      building.set(b.image, p);
      p.finally(() => building.delete(b.image)).catch(() => {});
    }
    await p;
  }
}
