// A bottle by slug: its state layout, metadata and engine project. Every
// core function that takes a slug opens it here, and opening sweeps the
// bottle's expired grants first, so a TTL holds whichever adapter (or none)
// is running.
import { promises as fs } from "node:fs";
import type { ProjectRef } from "../engine/index.js";
import { knownSlugs, requireBottle } from "../state/lookup.js";
import type { BottleLayout } from "../state/layout.js";
import type { Metadata } from "../state/metadata.js";
import { contextOf, projectOf, type Ctx, type CtxInput } from "./context.js";
import { expireGrants } from "./grants.js";

export interface BottleHandle {
  slug: string;
  layout: BottleLayout;
  meta: Metadata;
  project: ProjectRef;
}

export async function openBottle(ctx: Ctx, slug: unknown): Promise<BottleHandle> {
  const found = requireBottle(ctx.root, slug);
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
