// stop (SPEC §6): idempotent. Keep the logs, take everything down, keep the
// state dir for post-mortem unless asked to purge.
import { promises as fs } from "node:fs";
import { z } from "zod";
import { BottleError } from "../errors.js";
import { bridgeName, bottleLabelFilter } from "../plan/index.js";
import { acquireLock } from "../state/lock.js";
import { BOTTLE_STATES, readMetadata, writeMetadata } from "../state/metadata.js";
import type { ProjectRef } from "../engine/index.js";
import type { BottleLayout } from "../state/layout.js";
import type { Metadata } from "../state/metadata.js";
import { contextOf, instanceOf, projectOf, type Ctx, type CtxInput } from "./context.js";
import { openBottle } from "./handle.js";
import { dumpLogs } from "./logs.js";
import { settleTasks } from "./tasks.js";

export interface StopRequest extends CtxInput {
  purge?: boolean;
}

/** What bottle_stop returns as structuredContent and `bottle stop --json` prints. */
export const stopOutputSchema = z.object({ slug: z.string(), state: z.enum(["stopped", "purged"]), wasState: z.enum(BOTTLE_STATES), ms: z.number() });
export type StopResult = z.output<typeof stopOutputSchema>;

export async function stopBottle(slug: string, o: StopRequest = {}): Promise<StopResult> {
  const t0 = Date.now();
  const ctx = contextOf(o);
  const { layout } = await openBottle(ctx, slug, { pooled: "allow" });
  const lock = await acquireLock(layout);
  try {
    // Read again under the lock: a pooled bottle may have been claimed (its
    // state dir renamed away) between the open and the lock; its containers
    // are someone else's bottle now.
    const now = readMetadata(layout);
    if (!now) throw new BottleError("unknown-slug", `no bottle "${layout.slug}" (it was claimed or removed meanwhile)`);
    await takeDown(ctx, layout, now, projectOf(now), o.purge ?? false);
    return { slug: now.slug, state: o.purge ? "purged" : "stopped", wasState: now.state, ms: Date.now() - t0 };
  } finally {
    await lock.release();
  }
}

/** Stop under a lock the caller holds: record tasks, keep the logs, remove every engine object, mark it stopped (or purge). */
export async function takeDown(ctx: Ctx, layout: BottleLayout, meta: Metadata, project: ProjectRef, purge: boolean): Promise<void> {
  if (meta.state !== "stopped") {
    // Before the containers go: record how each task ended (the down ends the running ones).
    await settleTasks(ctx, layout, meta, "the bottle was stopped while the task ran").catch(() => 0);
    const hasCompose = await fs.stat(meta.composeFile).then(
      () => true,
      () => false,
    );
    if (hasCompose) {
      await dumpLogs(ctx.engine, project, layout).catch(() => {});
      await ctx.engine.down(project);
      await ctx.engine.removeNetworks(meta.networks.map((n) => n.name));
    }
    // Anything still labelled with this bottle (or everything, when a start
    // died before writing a compose file).
    await ctx.engine.removeAll(bottleLabelFilter(instanceOf(meta), ctx.root));
    for (const n of meta.networks) if (n.internal) await ctx.engine.release(bridgeName(n.name)).catch(() => {});
    await writeMetadata(layout, { ...meta, state: "stopped" });
  }
  if (purge) await fs.rm(layout.stateDir, { recursive: true, force: true });
}
