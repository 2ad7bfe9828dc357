// list (SPEC §6): state dirs joined with what the engine reports by label.
import { z } from "zod";
import { LABELS, stateRootId } from "../plan/index.js";
import { layoutOf } from "../state/layout.js";
import { pidAlive } from "../state/lock.js";
import { knownSlugs } from "../state/lookup.js";
import { BOTTLE_STATES, readMetadata } from "../state/metadata.js";
import { contextOf, withEngine, type CtxInput } from "./context.js";
import { expireGrants } from "./grants.js";
import { taskDiskSchema, taskDiskUsage } from "./tasks.js";

export const LISTED_STATES = ["running", "pooled", "starting", "stopped", "failed", "degraded", "orphaned"] as const;
export type ListedState = (typeof LISTED_STATES)[number];

export const listedBottleSchema = z.object({
  slug: z.string(),
  profile: z.string(),
  state: z.enum(LISTED_STATES),
  /** The state metadata.json records (absent for objects with no state dir). */
  recorded: z.enum(BOTTLE_STATES).optional(),
  containers: z.array(z.object({ name: z.string(), service: z.string(), state: z.string(), health: z.string().optional() })),
  networks: z.array(z.string()),
  detail: z.string().optional(),
  /** The engine its objects were found on (for a bottle with no state dir: where cleanup removes them). */
  engine: z.enum(["compose", "swarm"]).optional(),
  /** Host disk the bottle's task dir takes (agent-writable, so reported; bottle_run refuses over the limit). */
  taskDisk: taskDiskSchema.optional(),
});
export type ListedBottle = z.output<typeof listedBottleSchema>;

/** What bottle_list returns as structuredContent and `bottle list --json` prints. */
export const listOutputSchema = z.object({ bottles: z.array(listedBottleSchema) });

export async function listBottles(o: CtxInput = {}): Promise<ListedBottle[]> {
  const ctx = contextOf(o);
  const root = ctx.root;
  await expireGrants(ctx);
  // Engine objects carry the bottle's engine-side name: its slug, or for a
  // bottle claimed from the warm pool the name it was started under.
  const known = knownSlugs(root);
  const metas = new Map(known.map((slug) => [slug, readMetadata(layoutOf(root, slug))]));
  const slugOf = new Map<string, string>();
  const kinds = new Set<"compose" | "swarm">();
  for (const [slug, meta] of metas) {
    if (meta?.instance) slugOf.set(meta.instance, slug);
    kinds.add(meta?.engine ?? "compose");
  }
  // Only this state root's objects (another root's bottles are not our
  // orphans), from every engine a bottle here runs on. An engine that cannot
  // be asked leaves its bottles as recorded, with the reason.
  const filter = { [LABELS.stateRoot]: stateRootId(root) };
  const found = await ctx.engine.list(filter);
  // Which engine each label's objects came from (orphans have no metadata to say).
  const foundOn = new Map<string, "compose" | "swarm">();
  const note = (kind: "compose" | "swarm" | "fake", r: typeof found) => {
    if (kind === "fake") return;
    for (const x of [...r.containers, ...r.networks]) if (!foundOn.has(x.slug)) foundOn.set(x.slug, kind);
  };
  note(ctx.engine.kind, found);
  const unreachable = new Map<string, string>();
  for (const kind of kinds) {
    const other = withEngine(ctx, kind).engine;
    if (other === ctx.engine) continue;
    try {
      const more = await other.list(filter);
      note(other.kind, more);
      found.containers.push(...more.containers);
      found.networks.push(...more.networks);
    } catch (err) {
      unreachable.set(kind, (err as Error).message.split("\n")[0] ?? "unreachable");
    }
  }
  const owner = (label: string) => slugOf.get(label) ?? label;
  const containers = new Map<string, ListedBottle["containers"]>();
  for (const c of found.containers) {
    const slug = owner(c.slug);
    containers.set(slug, [...(containers.get(slug) ?? []), { name: c.name, service: c.service, state: c.state, ...(c.health ? { health: c.health } : {}) }]);
  }
  const networks = new Map<string, string[]>();
  for (const n of found.networks) networks.set(owner(n.slug), [...(networks.get(owner(n.slug)) ?? []), n.name]);

  const slugs = new Set([...known, ...containers.keys(), ...networks.keys()]);
  const out: ListedBottle[] = [];
  for (const slug of [...slugs].sort()) {
    const meta = metas.get(slug);
    const cs = containers.get(slug) ?? [];
    const ns = networks.get(slug) ?? [];
    const base = { slug, profile: meta?.profile ?? "?", containers: cs, networks: ns, ...(meta ? { recorded: meta.state } : {}) };
    if (!meta) {
      const engine = foundOn.get(slug);
      out.push({ ...base, state: "orphaned", detail: "Docker objects with no state dir", ...(engine ? { engine } : {}) });
      continue;
    }
    const cannotAsk = unreachable.get(meta.engine ?? "compose");
    if (cannotAsk !== undefined) {
      out.push({ ...base, state: meta.state, detail: `could not ask its ${meta.engine ?? "compose"} engine: ${cannotAsk}` });
      continue;
    }
    const up = cs.filter((c) => c.state === "running");
    let state: ListedState;
    let detail: string | undefined;
    switch (meta.state) {
      case "running":
        if (!cs.length) [state, detail] = ["orphaned", "recorded as running but no containers exist"];
        else if (up.length < meta.services.length || cs.some((c) => c.health === "unhealthy")) [state, detail] = ["degraded", `${up.length}/${meta.services.length} services running`];
        else state = meta.pooled ? "pooled" : "running";
        break;
      case "starting":
        if (meta.ownerPid && pidAlive(meta.ownerPid)) state = "starting";
        else [state, detail] = ["orphaned", `the process that was ${meta.state} it (pid ${meta.ownerPid ?? "?"}) is gone`];
        break;
      default:
        state = meta.state;
        if (cs.length || ns.length) [state, detail] = ["orphaned", `recorded as ${meta.state} but Docker objects remain`];
    }
    // A bad BOTTLE_TASK_DISK_LIMIT_MB is reported by bottle_run and bottle_task; the list still lists.
    const taskDisk = await taskDiskUsage(layoutOf(root, slug), ctx.env).catch(() => undefined);
    out.push({ ...base, state, ...(detail ? { detail } : meta.error ? { detail: meta.error.split("\n")[0] } : {}), ...(taskDisk?.files ? { taskDisk } : {}) });
  }
  return out;
}
