// plan-input.json: what a bottle's plan is resolved from, kept from its
// start (the profile as loaded, subnets, host user). A grant
// changes the plan by being added to this input, then everything is rendered
// again: nothing reads rendered configs back.
import { promises as fs } from "node:fs";
import { z } from "zod";
import { BottleError } from "../errors.js";
import { profileSchema } from "../manifest/index.js";
import type { ResolveOptions } from "../plan/index.js";
import { writeFileAtomic } from "../state/atomic.js";
import type { BottleLayout } from "../state/layout.js";

export type PlanInput = Omit<ResolveOptions, "grants">;

const planInputSchema = z.object({
  slug: z.string(),
  instance: z.string().optional(),
  profileName: z.string(),
  profile: z.unknown(),
  defaultFirewall: z.enum(["builtin", "pipelock"]),
  stateRoot: z.string(),
  packageRoot: z.string(),
  subnets: z.object({ internal: z.string(), egress: z.string() }).optional(),
  hostUser: z.object({ uid: z.number(), gid: z.number() }),
  envFileUsable: z.boolean().optional(),
});

export async function writePlanInput(l: BottleLayout, input: PlanInput): Promise<void> {
  await writeFileAtomic(l.planInputFile, `${JSON.stringify(input)}\n`, 0o600);
}

export async function readPlanInput(l: BottleLayout): Promise<PlanInput> {
  let text: string;
  try {
    text = await fs.readFile(l.planInputFile, "utf8");
  } catch {
    throw new BottleError("conflict", `bottle "${l.slug}" was started by an older bot-bottle and cannot take grants`, `Stop it and start it again (bottle stop ${l.slug}).`);
  }
  const raw = planInputSchema.parse(JSON.parse(text));
  // The profile was validated and its paths resolved at start; its transforms are idempotent.
  const { subnets, envFileUsable, instance, ...rest } = raw;
  return {
    ...rest,
    profile: profileSchema.parse(raw.profile),
    ...(subnets ? { subnets } : {}),
    ...(envFileUsable !== undefined ? { envFileUsable } : {}),
    ...(instance !== undefined ? { instance } : {}),
  };
}
