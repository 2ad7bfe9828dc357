// cleanup (SPEC §6 reconcile): remove what no live bottle owns — Docker
// objects with no state dir, bottles recorded as running/starting whose
// containers or owning process are gone, leftovers of stopped/failed bottles,
// and stale locks. Running bottles and live starts are never touched.
import { promises as fs } from "node:fs";
import nodePath from "node:path";
import { stateRoot } from "../state/root.js";
import { stateRootId } from "../plan/index.js";
import { isolatedBridges, releaseBridge } from "../engine/host-isolation.js";
import { removeBottleObjects } from "../engine/objects.js";
import { metadataFile } from "../state/lookup.js";
import { listBottles } from "./list.js";
import { acquireLock, lockHolder, pidAlive } from "../state/lock.js";
import { readMetadata, writeMetadata } from "../state/metadata.js";

export interface CleanupResult {
  removed: Array<{ slug: string; reason: string; containers: string[]; networks: string[] }>;
  staleLocks: string[];
  /** Host firewall rules left for bridges that no longer exist. */
  staleRules: string[];
}

export interface CleanupOptions {
  env?: NodeJS.ProcessEnv;
  /** Also delete the state dirs of the bottles cleaned up (default: keep them for post-mortem). */
  purge?: boolean;
}

export async function cleanup(o: CleanupOptions = {}): Promise<CleanupResult> {
  const env = o.env;
  const root = stateRoot(env);
  const result: CleanupResult = { removed: [], staleLocks: [], staleRules: [] };
  const lockDir = nodePath.join(root, ".locks");
  for (const f of await fs.readdir(lockDir).catch(() => [] as string[])) {
    const file = nodePath.join(lockDir, f);
    const pid = await lockHolder(file);
    if (pid === undefined || !pidAlive(pid)) {
      await fs.rm(file, { force: true });
      result.staleLocks.push(f.replace(/\.lock$/, ""));
    }
  }
  for (const b of await listBottles(env)) {
    if (b.state !== "orphaned") continue;
    let lock: { release: () => Promise<void> } | undefined;
    try {
      lock = await acquireLock(root, b.slug);
    } catch {
      continue; // something live is working on it
    }
    try {
      const removed = await removeBottleObjects(b.slug, stateRootId(root));
      result.removed.push({ slug: b.slug, reason: b.detail ?? "orphaned", ...removed });
      const meta = readMetadata(metadataFile(root, b.slug));
      if (o.purge) await fs.rm(nodePath.join(root, b.slug), { recursive: true, force: true });
      else if (meta && (meta.state === "running" || meta.state === "starting" || meta.state === "stopping")) {
        await writeMetadata(metadataFile(root, b.slug), { ...meta, state: "failed", error: `orphaned (${b.detail ?? "no containers"}); removed by cleanup` });
      }
    } finally {
      await lock.release();
    }
  }
  for (const bridge of await isolatedBridges()) {
    const exists = await fs.stat(`/sys/class/net/${bridge}`).then(() => true, () => false);
    if (!exists) {
      await releaseBridge(bridge);
      result.staleRules.push(bridge);
    }
  }
  return result;
}
