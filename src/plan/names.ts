// Labels on every container and network of a bottle. The state-root label
// scopes list and cleanup to the bottles of one state root, so two users (or
// a test run and real work) sharing a Docker engine never take each other's
// bottles for orphans.
import { createHash } from "node:crypto";
import nodePath from "node:path";

export const LABELS = {
  slug: "dev.bot-bottle.slug",
  profile: "dev.bot-bottle.profile",
  stateRoot: "dev.bot-bottle.state-root",
} as const;

/** A short stable id for a state root (the path itself stays off Docker). */
export function stateRootId(root: string): string {
  return createHash("sha256").update(nodePath.resolve(root)).digest("hex").slice(0, 16);
}

export function bottleLabels(slug: string, profile: string, root: string): Record<string, string> {
  return { [LABELS.slug]: slug, [LABELS.profile]: profile, [LABELS.stateRoot]: stateRootId(root) };
}
