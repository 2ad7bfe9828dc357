// Finding bottles by slug in the state root.
import { readdirSync } from "node:fs";
import nodePath from "node:path";
import { BottleError } from "../errors.js";
import { SLUG_RE, validateSlug } from "./slug.js";
import { readMetadata, type Metadata } from "./metadata.js";

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

export function metadataFile(root: string, slug: string): string {
  return nodePath.join(root, slug, "metadata.json");
}

/** The bottle's metadata, or an error that lists the slugs that do exist. */
export function requireBottle(root: string, slug: unknown): Metadata {
  const s = validateSlug(slug);
  const m = readMetadata(metadataFile(root, s));
  if (!m) {
    const known = knownSlugs(root);
    throw new BottleError("unknown-slug", `no bottle "${s}"`, known.length ? `Known bottles: ${known.join(", ")}.` : "There are no bottles yet; start one with bottle_start.");
  }
  return m;
}
