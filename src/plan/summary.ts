// What a plan amounts to, for people and models: one schema, so the MCP
// tools' output schema and the type are the same thing.
import { z } from "zod";
import { FIREWALL_ENGINES } from "../manifest/index.js";

export const networkSummarySchema = z.object({ name: z.string(), subnet: z.string(), internal: z.boolean() });
export const cloneUrlSchema = z.object({ name: z.string(), url: z.string() });

export const planSummarySchema = z.object({
  slug: z.string(),
  profile: z.string(),
  project: z.string(),
  manifest: z.string(),
  stateDir: z.string(),
  firewall: z.enum(FIREWALL_ENGINES),
  services: z.array(z.object({ service: z.string(), container: z.string(), image: z.string() })),
  networks: z.array(networkSummarySchema),
  /** True when subnets are placeholders (they are allocated at start). */
  subnetsArePreview: z.boolean(),
  agentProxy: z.string(),
  allow: z.array(z.string()),
  routes: z.array(z.object({ name: z.string(), host: z.string(), pathPrefix: z.string(), header: z.string(), env: z.array(z.string()) })),
  cloneUrls: z.array(cloneUrlSchema),
  /** Env var *names* whose values are taken from the host at start. */
  forwardedEnv: z.array(z.string()),
  secretEnv: z.array(z.string()),
});

export type PlanSummary = z.output<typeof planSummarySchema>;
