// The git gate's config file. Rendered on the host from the plan, validated
// again by the gate at start and by its pre-receive hook on every push (the
// hook rereads it, so a policy change applies to the next push).
import { z } from "zod";

const refPattern = z.string().regex(/^refs\/[A-Za-z0-9._/*-]+$/);

export const gitGatePolicySchema = z.strictObject({
  /** Refs the agent may push; `*` matches any run of characters, `/` included (as in refspecs). */
  push_refs: z.array(refPattern),
  /** Refs nobody pushes through the gate, whatever push_refs says. */
  protected: z.array(refPattern),
  allow_force: z.boolean(),
  allow_delete: z.boolean(),
  max_push_bytes: z.number().int().positive(),
});

export const gitGateConfigSchema = z.strictObject({
  version: z.literal(1),
  port: z.number().int().min(1).max(65535),
  upstreams: z.array(
    z.strictObject({
      name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/),
      url: z.string().min(1),
      identity_file: z.string().min(1),
      known_hosts_file: z.string().min(1),
      policy: gitGatePolicySchema,
    }),
  ),
});

export type GitGateConfig = z.output<typeof gitGateConfigSchema>;
export type GitGateUpstream = GitGateConfig["upstreams"][number];
export type GitGatePolicy = z.output<typeof gitGatePolicySchema>;
