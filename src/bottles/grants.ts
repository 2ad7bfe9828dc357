// Withdrawing grants whose time is up. Runs in the core: opening a bottle,
// listing bottles and reading the inbox sweep, and the MCP server's timer
// sweeps them all, so a TTL holds for a CLI-only user too. A sweep runs under
// the bottle's lock, so an expired grant is never re-applied by a decision
// that read the grant list before it.
import { audit } from "../contracts/queue.js";
import { logger } from "../log.js";
import { acquireLock } from "../state/lock.js";
import { isLive, readGrants, writeGrants } from "../state/grants.js";
import { layoutOf, type BottleLayout } from "../state/layout.js";
import { knownSlugs } from "../state/lookup.js";
import { readMetadata } from "../state/metadata.js";
import { projectOf, type Ctx } from "./context.js";
import { reconfigure } from "./reconfigure.js";

/** Under the bottle's lock: withdraw its grants whose time is up. Returns how many. */
export async function withdrawDue(ctx: Ctx, layout: BottleLayout): Promise<number> {
  const meta = readMetadata(layout);
  if (!meta) return 0;
  const grants = await readGrants(layout);
  const now = ctx.now();
  const due = grants.filter((g) => !isLive(g, now));
  if (!due.length) return 0;
  const keep = grants.filter((g) => isLive(g, now));
  // Configs first: if reloading fails, grants.json still lists them and the next sweep tries again.
  await reconfigure(ctx, { layout, project: projectOf(meta) }, keep);
  await writeGrants(layout, keep);
  for (const g of due) await audit(layout.queueDir, "expired", { id: g.id, kind: g.kind, target: g.target });
  return due.length;
}

export interface SweepOptions {
  /** Only these bottles (default: every bottle in the state root). */
  slugs?: readonly string[];
  /** How long to wait for a busy bottle before leaving it to the next sweep. */
  waitMs?: number;
}

/** Withdraw every grant whose time is up, in every running bottle (or those named). Returns how many. */
export async function expireGrants(ctx: Ctx, o: SweepOptions = {}): Promise<number> {
  let n = 0;
  for (const slug of o.slugs ?? knownSlugs(ctx.root)) {
    const layout = layoutOf(ctx.root, slug);
    if (readMetadata(layout)?.state !== "running") continue;
    const now = ctx.now();
    if (!(await readGrants(layout)).some((g) => !isLive(g, now))) continue;
    let lock: Awaited<ReturnType<typeof acquireLock>>;
    try {
      lock = await acquireLock(layout, { waitMs: o.waitMs ?? 5_000 });
    } catch (err) {
      logger.warn({ slug, err: (err as Error).message }, "grants due to expire are left to the next sweep: the bottle is busy");
      continue;
    }
    try {
      n += await withdrawDue(ctx, layout);
    } catch (err) {
      logger.warn({ slug, err: (err as Error).message }, "withdrawing expired grants failed; the next sweep tries again");
    } finally {
      await lock.release();
    }
  }
  return n;
}
