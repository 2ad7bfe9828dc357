// The agent's read-only view of what it may reach now (access/current.json),
// written by the host, read by the supervise sidecar's current_access tool.
import { z } from "zod";

export const accessSchema = z.object({
  domains: z.array(z.string()),
  /** Routes by name: never the credential, only which header egress sets. */
  routes: z.array(z.object({ name: z.string(), host: z.string(), path_prefix: z.string(), header: z.string() })),
  git_refs: z.array(z.string()),
  grants: z.array(z.object({ id: z.string(), kind: z.string(), target: z.string(), expiresAt: z.string().optional() })),
  /** Private ranges the firewall lets the agent dial (network.allow_cidrs). */
  cidrs: z.array(z.string()).default([]),
  /**
   * Which credential (by env name, never its value) egress sends where: a
   * route request may use one only for these hosts and path prefixes.
   */
  credentials: z
    .array(z.object({ env: z.string(), routes: z.array(z.object({ host: z.string(), port: z.number().int().default(443), path_prefix: z.string() })), hosts: z.array(z.string()) }))
    .default([]),
  updatedAt: z.string(),
});

export type Access = z.output<typeof accessSchema>;
