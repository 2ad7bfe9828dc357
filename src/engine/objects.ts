// Docker objects found by our labels, for when there is no compose file to
// drive (orphans, a start that died before writing one).
import { docker } from "./run.js";
import { LABELS } from "../plan/names.js";
import { removeNetwork } from "./networks.js";

/** Filters for one bottle of one state root. */
const filters = (slug: string, rootId: string) => ["--filter", `label=${LABELS.slug}=${slug}`, "--filter", `label=${LABELS.stateRoot}=${rootId}`];

export async function containersOf(slug: string, rootId: string): Promise<string[]> {
  const r = await docker(["ps", "-aq", ...filters(slug, rootId)], { timeout: 30_000 });
  return r.stdout.split("\n").filter(Boolean);
}

export async function networksOf(slug: string, rootId: string): Promise<string[]> {
  const r = await docker(["network", "ls", ...filters(slug, rootId), "--format", "{{.Name}}"], { timeout: 30_000 });
  return r.stdout.split("\n").filter(Boolean);
}

/** Remove every container and network of this bottle. Returns what was removed. */
export async function removeBottleObjects(slug: string, rootId: string): Promise<{ containers: string[]; networks: string[] }> {
  const [containers, networks] = await Promise.all([containersOf(slug, rootId), networksOf(slug, rootId)]);
  if (containers.length) await docker(["rm", "-f", "-v", ...containers], { timeout: 120_000 });
  await removeNetwork(...networks);
  return { containers, networks };
}
