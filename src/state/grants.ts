// grants.json: the supervise approvals a bottle holds now. The plan is
// resolved from the bottle's plan input plus its live grants; nothing else
// reads or patches rendered configs.
import { promises as fs } from "node:fs";
import { z } from "zod";
import { writeFileAtomic } from "../contracts/atomic.js";
import type { BottleLayout } from "./layout.js";

export const grantSchema = z.object({
  id: z.string(),
  kind: z.enum(["domain", "egress_route", "git_ref", "other"]),
  target: z.string(),
  route: z.object({ path_prefix: z.string(), port: z.number().int().default(443), header: z.string(), value: z.string() }).optional(),
  grantedAt: z.string(),
  expiresAt: z.string().optional(),
});
export type Grant = z.output<typeof grantSchema>;

export async function readGrants(l: BottleLayout): Promise<Grant[]> {
  try {
    return z.array(grantSchema).parse(JSON.parse(await fs.readFile(l.grantsFile, "utf8")));
  } catch {
    return [];
  }
}

export async function writeGrants(l: BottleLayout, grants: readonly Grant[]): Promise<void> {
  await writeFileAtomic(l.grantsFile, `${JSON.stringify(grants, null, 2)}\n`, 0o600);
}

/** A grant is live until its expiry (a grant without one lasts until the bottle stops). */
export const isLive = (g: Pick<Grant, "expiresAt">, now: Date) => !g.expiresAt || Date.parse(g.expiresAt) > now.getTime();

export const liveGrants = (grants: readonly Grant[], now: Date) => grants.filter((g) => isLive(g, now));
