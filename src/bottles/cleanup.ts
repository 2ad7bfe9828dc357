// cleanup (SPEC §6 reconcile): remove what no live bottle owns — engine
// objects with no state dir, bottles recorded as running/starting whose
// containers or owning process are gone, leftovers of stopped/failed bottles,
// and stale locks. Running bottles and live starts are never touched.
import { promises as fs } from "node:fs";
import { z } from "zod";
import { bottleLabelFilter } from "../plan/index.js";
import { layoutOf } from "../state/layout.js";
import { acquireLock, removeStaleLocks, type Lock } from "../state/lock.js";
import { readMetadata, writeMetadata } from "../state/metadata.js";
import { contextOf, instanceOf, withEngine, type CtxInput } from "./context.js";
import { listBottles } from "./list.js";

/** What bottle_cleanup returns as structuredContent and `bottle cleanup --json` prints. */
export const cleanupOutputSchema = z.object({
  removed: z.array(z.object({ slug: z.string(), reason: z.string(), containers: z.array(z.string()), networks: z.array(z.string()) })),
  staleLocks: z.array(z.string()),
  /** Host firewall rules left for bridges that no longer exist. */
  staleRules: z.array(z.string()),
});
export type CleanupResult = z.output<typeof cleanupOutputSchema>;

/** One line per thing removed, or undefined when there was nothing to do. */
export function cleanupText(r: CleanupResult): string | undefined {
  const lines = [
    ...r.removed.map((x) => `removed ${x.slug}: ${x.containers.length} containers, ${x.networks.length} networks (${x.reason})`),
    ...r.staleLocks.map((l) => `removed stale lock ${l}`),
    ...r.staleRules.map((b) => `removed host firewall rule for gone bridge ${b}`),
  ];
  return lines.length ? lines.join("\n") : undefined;
}

export interface CleanupOptions extends CtxInput {
  /** Also delete the state dirs of the bottles cleaned up (default: keep them for post-mortem). */
  purge?: boolean;
}

export async function cleanup(o: CleanupOptions = {}): Promise<CleanupResult> {
  const ctx = contextOf(o);
  const result: CleanupResult = { removed: [], staleLocks: await removeStaleLocks(ctx.root), staleRules: [] };
  for (const b of await listBottles(ctx)) {
    if (b.state !== "orphaned") continue;
    const layout = layoutOf(ctx.root, b.slug);
    let lock: Lock;
    try {
      lock = await acquireLock(layout);
    } catch {
      continue; // something live is working on it
    }
    try {
      const meta = readMetadata(layout);
      // No state dir: its objects were found by this process's engine, so remove them there.
      // The engine that runs it (its metadata), else the one its objects were found on.
      const owner = meta ? withEngine(ctx, meta.engine) : b.engine ? withEngine(ctx, b.engine) : ctx;
      const removed = await owner.engine.removeAll(bottleLabelFilter(meta ? instanceOf(meta) : b.slug, ctx.root));
      result.removed.push({ slug: b.slug, reason: b.detail ?? "orphaned", ...removed });
      if (o.purge) await fs.rm(layout.stateDir, { recursive: true, force: true });
      else if (meta && (meta.state === "running" || meta.state === "starting")) {
        await writeMetadata(layout, { ...meta, state: "failed", error: `orphaned (${b.detail ?? "no containers"}); removed by cleanup` });
      }
    } finally {
      await lock.release();
    }
  }
  result.staleRules = await ctx.engine.staleIsolation();
  return result;
}
