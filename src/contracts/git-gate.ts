// The git gate's config file. Rendered on the host from the plan, validated
// again by the gate at start and by its pre-receive hook on every push (the
// hook rereads it, so a policy change applies to the next push).
import { z } from "zod";
import { REF_PATTERN_RE, UPSTREAM_NAME_RE } from "./patterns.js";

const refPattern = z.string().regex(REF_PATTERN_RE);

export const gitGatePolicySchema = z.strictObject({
  /**
   * Refs the agent may push, matched per path segment: `*` matches within one
   * segment (never "/"), a whole `**` segment matches one or more segments.
   */
  push_refs: z.array(refPattern),
  /** Refs nobody pushes through the gate, whatever push_refs says; each also guards the refs below it. */
  protected: z.array(refPattern),
  allow_force: z.boolean(),
  allow_delete: z.boolean(),
  /** Largest push: git stops receiving a bigger pack while it streams (receive.maxInputSize), the hook checks the received size again. */
  max_push_bytes: z.number().int().positive(),
});

export const gitGateConfigSchema = z.strictObject({
  version: z.literal(1),
  port: z.number().int().min(1).max(65535),
  upstreams: z.array(
    z.strictObject({
      name: z.string().regex(UPSTREAM_NAME_RE),
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
