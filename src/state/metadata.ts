// metadata.json: what a bottle is and what state it is in. Never secrets.
import { readFileSync } from "node:fs";
import { z } from "zod";
import { writeFileAtomic } from "../contracts/atomic.js";
import type { BottleLayout } from "./layout.js";

export const BOTTLE_STATES = ["starting", "running", "stopped", "failed"] as const;
export type BottleState = (typeof BOTTLE_STATES)[number];

export const metadataSchema = z.object({
  slug: z.string(),
  profile: z.string(),
  project: z.string(),
  composeFile: z.string(),
  manifest: z.string(),
  networks: z.array(z.object({ name: z.string(), subnet: z.string(), internal: z.boolean() })),
  services: z.array(z.object({ service: z.string(), container: z.string(), image: z.string() })),
  firewall: z.enum(["builtin", "pipelock"]),
  packageVersion: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  state: z.enum(BOTTLE_STATES),
  /** The pid of the process that started it (to tell a live start from a dead one). */
  ownerPid: z.number().optional(),
  error: z.string().optional(),
  cloneUrls: z.array(z.object({ name: z.string(), url: z.string() })).default([]),
  /** The engine-side name (labels, containers) when it is not the slug: a bottle claimed from the warm pool. */
  instance: z.string().optional(),
  /** The engine that runs it (absent: compose, what every bottle before the choice ran on). */
  engine: z.enum(["compose", "swarm"]).optional(),
  /** Started and waiting in the warm pool: nobody may exec into it; a start of its profile claims it. */
  pooled: z.boolean().optional(),
});

export type Metadata = z.output<typeof metadataSchema>;

export function readMetadata(l: Pick<BottleLayout, "metadataFile">): Metadata | undefined {
  try {
    return metadataSchema.parse(JSON.parse(readFileSync(l.metadataFile, "utf8")));
  } catch {
    return undefined;
  }
}

export async function writeMetadata(l: Pick<BottleLayout, "metadataFile">, m: Metadata): Promise<void> {
  await writeFileAtomic(l.metadataFile, `${JSON.stringify({ ...m, updatedAt: new Date().toISOString() }, null, 2)}\n`, 0o600);
}
