// Every name a bottle gets on the engine, in one place: containers, the
// compose project, networks and their bridges, the labels on every container
// and network. The state-root label scopes list and cleanup to the bottles of
// one state root, so two users (or a test run and real work) sharing a Docker
// engine never take each other's bottles for orphans.
import { createHash } from "node:crypto";
import nodePath from "node:path";

export const LABELS = {
  slug: "dev.bot-bottle.slug",
  profile: "dev.bot-bottle.profile",
  stateRoot: "dev.bot-bottle.state-root",
} as const;

/** Pinned pipelock release (SPEC §7: the image is pinned, never :latest). */
export const PIPELOCK_IMAGE = "ghcr.io/luckypipewrench/pipelock:3.6.0";

export function containerName(service: string, slug: string): string {
  return `bottle-${service}-${slug}`;
}

export function projectName(slug: string): string {
  return `bottle-${slug}`;
}

export function networkName(slug: string, kind: string): string {
  return `bottle-${slug}-${kind}`;
}

/** Bridge names must fit IFNAMSIZ (15); derive a stable one from the network name. */
export function bridgeName(network: string): string {
  return `bb-${createHash("sha256").update(network).digest("hex").slice(0, 10)}`;
}

/** A short stable id for a state root (the path itself stays off Docker). */
export function stateRootId(root: string): string {
  return createHash("sha256").update(nodePath.resolve(root)).digest("hex").slice(0, 16);
}

export function bottleLabels(slug: string, profile: string, root: string): Record<string, string> {
  return { [LABELS.slug]: slug, [LABELS.profile]: profile, [LABELS.stateRoot]: stateRootId(root) };
}

/** The labels that pick one bottle of one state root. */
export function bottleLabelFilter(slug: string, root: string): Record<string, string> {
  return { [LABELS.slug]: slug, [LABELS.stateRoot]: stateRootId(root) };
}
