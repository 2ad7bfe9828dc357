// Finding bottles by slug in the state root.
import { readdirSync } from "node:fs";
import { BottleError } from "../errors.js";
import { layoutOf, type BottleLayout } from "./layout.js";
import { readMetadata, type Metadata } from "./metadata.js";
import { SLUG_RE, validateSlug } from "./slug.js";

export function knownSlugs(root: string): string[] {
  try {
    return readdirSync(root, { withFileTypes: true })
      .filter((d) => d.isDirectory() && SLUG_RE.test(d.name))
      .map((d) => d.name)
      .sort();
  } catch {
    return [];
  }
}

/** The bottle's layout and metadata, or an error that lists the slugs that do exist. */
export function requireBottle(root: string, slug: unknown): { slug: string; layout: BottleLayout; meta: Metadata } {
  const s = validateSlug(slug);
  const layout = layoutOf(root, s);
  const meta = readMetadata(layout);
  if (!meta) {
    const known = knownSlugs(root);
    throw new BottleError("unknown-slug", `no bottle "${s}"`, known.length ? `Known bottles: ${known.join(", ")}.` : "There are no bottles yet; start one with bottle_start.");
  }
  return { slug: s, layout, meta };
}
