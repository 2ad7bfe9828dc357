// stop (SPEC §6): idempotent. Keep the logs, take everything down, keep the
// state dir for post-mortem unless asked to purge.
import { promises as fs } from "node:fs";
import nodePath from "node:path";
import { composeDown } from "../engine/compose.js";
import { releaseBridge } from "../engine/host-isolation.js";
import { removeNetwork } from "../engine/networks.js";
import { removeBottleObjects } from "../engine/objects.js";
import { stateRoot } from "../state/root.js";
import { bridgeName, stateRootId } from "../plan/index.js";
import { requireBottle } from "../state/lookup.js";
import { acquireLock } from "../state/lock.js";
import { dumpLogs } from "./logs.js";
import { writeMetadata, type Metadata } from "../state/metadata.js";

export interface StopResult {
  slug: string;
  state: "stopped" | "purged";
  wasState: Metadata["state"];
  ms: number;
}

export async function stopBottle(slug: string, o: { purge?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<StopResult> {
  const t0 = Date.now();
  const root = stateRoot(o.env);
  const meta = requireBottle(root, slug);
  const stateDir = nodePath.join(root, meta.slug);
  const lock = await acquireLock(root, meta.slug);
  try {
    const p = { project: meta.project, file: meta.composeFile };
    if (meta.state !== "stopped") {
      const hasCompose = await fs.stat(meta.composeFile).then(() => true, () => false);
      if (hasCompose) {
        await dumpLogs(meta, stateDir).catch(() => {});
        await composeDown(p);
        await removeNetwork(...meta.networks.map((n) => n.name));
      }
      // Anything still labelled with this slug (or everything, when a start
      // died before writing a compose file).
      await removeBottleObjects(meta.slug, stateRootId(root));
      for (const n of meta.networks) if (n.internal) await releaseBridge(bridgeName(n.name)).catch(() => {});
      await writeMetadata(nodePath.join(stateDir, "metadata.json"), { ...meta, state: "stopped" });
    }
    if (o.purge) await fs.rm(stateDir, { recursive: true, force: true });
    return { slug: meta.slug, state: o.purge ? "purged" : "stopped", wasState: meta.state, ms: Date.now() - t0 };
  } finally {
    await lock.release();
  }
}
