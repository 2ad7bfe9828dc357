// A bottle by slug: its state layout, metadata and engine project. Every
// core function that takes a slug opens it here, and opening sweeps the
// bottle's expired grants first, so a TTL holds whichever adapter (or none)
// is running.
import { promises as fs } from "node:fs";
import type { ProjectRef } from "../engine/index.js";
import { BottleError } from "../errors.js";
import { knownSlugs, requireBottle } from "../state/lookup.js";
import type { BottleLayout } from "../state/layout.js";
import type { Metadata } from "../state/metadata.js";
import { contextOf, projectOf, withEngine, type Ctx, type CtxInput } from "./context.js";
import { expireGrants } from "./grants.js";

export interface BottleHandle {
  slug: string;
  layout: BottleLayout;
  meta: Metadata;
  project: ProjectRef;
}

export async function openBottle(ctx: Ctx, slug: unknown, o: { pooled?: "allow" } = {}): Promise<BottleHandle> {
  const found = requireBottle(ctx.root, slug);
  // A bottle waiting in the warm pool belongs to whoever claims it next:
  // nothing may run in it or read from it before then (only stop drains it).
  if (found.meta.pooled && o.pooled !== "allow") {
    throw new BottleError(
      "conflict",
      `bottle "${found.slug}" is waiting in the warm pool of profile "${found.meta.profile}"`,
      `Start profile ${found.meta.profile} to get a bottle of your own (it claims one from the pool), or drain the pool with \`bottle pool ${found.meta.profile} --size 0\`.`,
    );
  }
  // From here on the call drives this bottle with the engine that started it
  // (a swarm bottle from a process whose default is compose, or the other way).
  ctx.engine = withEngine(ctx, found.meta.engine).engine;
  if (found.meta.state === "running") await expireGrants(ctx, { slugs: [found.slug] });
  return { ...found, project: projectOf(found.meta) };
}

/** The slugs of every bottle in the state root. */
export const bottleSlugs = (o: CtxInput = {}) => knownSlugs(contextOf(o).root);

/** A bottle's rendered compose file or its metadata.json, as text. */
export async function readBottleFile(slug: string, which: "compose" | "metadata", o: CtxInput = {}): Promise<string> {
  const { layout } = requireBottle(contextOf(o).root, slug);
  return fs.readFile(which === "compose" ? layout.composeFile : layout.metadataFile, "utf8");
}
