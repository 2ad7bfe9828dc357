// The core of `bottle_render` / `bottle render`: manifest + profile -> plan ->
// compose and sidecar configs. No side effects.
import { z } from "zod";
import { packageRoot } from "../package.js";
import { credentialInput, credentialWarnings, type CredentialWarning } from "../plan/credential-warnings.js";
import { planSummarySchema, resolvePlan, type Plan, type PlanSummary, type Subnets } from "../plan/index.js";
import { agentProxyUrl, renderBottle, type RenderedFile } from "../render/index.js";
import type { Metadata } from "../state/metadata.js";
import { stateRoot } from "../state/root.js";
import type { CtxInput } from "./context.js";
import { defaultSlug } from "../state/slug.js";
import { envFileUsable, hostUser, loadProfile } from "./profile.js";

export interface RenderRequest extends CtxInput {
  profile: string;
  manifest?: string;
  slug?: string;
  /** Real subnets when the lifecycle has allocated them; else a preview. */
  subnets?: Subnets;
  cwd?: string;
}

export interface RenderOutcome {
  plan: Plan;
  summary: PlanSummary;
  composeYaml: string;
  files: RenderedFile[];
  /** Things in the profile that will not work as the user likely expects (computed, not logged). */
  warnings: CredentialWarning[];
}

const warningSchema = z.object({
  kind: z.enum(["forwarded", "routed"]),
  variable: z.string(),
  hosts: z.array(z.string()),
  route: z.object({ host: z.string(), header: z.string(), value: z.string() }).optional(),
  message: z.string(),
});

/** What bottle_render returns as structuredContent and `bottle render --json` prints. */
export const renderOutputSchema = z.object({
  summary: planSummarySchema,
  compose: z.string().describe("The docker-compose.yml the bottle would run (YAML)."),
  files: z
    .array(z.object({ sidecar: z.enum(["firewall", "egress", "git-gate"]), path: z.string(), content: z.string() }))
    .describe("Sidecar config files, with the state-dir path each is written to."),
  warnings: z.array(warningSchema).describe("Profile settings that will not work as intended, e.g. a forwarded credential the firewall's DLP will refuse; each says what to change."),
});
export type RenderOutput = z.output<typeof renderOutputSchema>;

export const renderOutput = (r: RenderOutcome): RenderOutput => ({ summary: r.summary, compose: r.composeYaml, files: r.files, warnings: r.warnings });

export function renderProfile(req: RenderRequest): RenderOutcome {
  const env = req.env ?? process.env;
  const root = stateRoot(env);
  const { file, loaded, profile } = loadProfile(env, req.profile, req.manifest, req.cwd);
  const plan = resolvePlan({
    profileName: req.profile,
    profile,
    defaultFirewall: loaded.manifest.defaults.firewall,
    slug: req.slug ?? defaultSlug(req.profile),
    ...(req.subnets ? { subnets: req.subnets } : {}),
    stateRoot: root,
    packageRoot: packageRoot(),
    hostUser: hostUser(),
    envFileUsable: envFileUsable(profile),
  });
  const rendered = renderBottle(plan);
  return { plan, summary: summarize(plan, file, !req.subnets), composeYaml: rendered.composeYaml, files: rendered.files, warnings: credentialWarnings(credentialInput(plan)) };
}

export function summarize(plan: Plan, manifest: string, subnetsArePreview: boolean): PlanSummary {
  const services = [plan.firewall, plan.egress, plan.gitGate, plan.supervise, plan.agent]
    .filter((s) => s !== undefined)
    .map((s) => ({ service: s.service, container: s.containerName, image: s.image }));
  return {
    slug: plan.slug,
    profile: plan.profile,
    project: plan.project,
    manifest,
    stateDir: plan.paths.stateDir,
    firewall: plan.firewall.engine,
    services,
    networks: [plan.networks.internal, plan.networks.egress].map((n) => ({ name: n.name, subnet: n.subnet, internal: n.internal })),
    subnetsArePreview,
    agentProxy: agentProxyUrl(plan),
    allow: plan.firewall.allow,
    routes: (plan.egress?.routes ?? []).map((r) => ({ name: r.name, host: r.host, pathPrefix: r.pathPrefix, header: r.header, env: r.envNames })),
    cloneUrls: (plan.gitGate?.upstreams ?? []).map((u) => ({ name: u.name, url: u.cloneUrl })),
    forwardedEnv: plan.agent.forwardEnv,
    secretEnv: plan.egress?.envNames ?? [],
  };
}

/** What metadata.json records for a bottle of this plan (state and times from the caller). */
export function toMetadata(plan: Plan, manifest: string, state: Metadata["state"], createdAt: string): Metadata {
  const s = summarize(plan, manifest, false);
  return {
    slug: plan.slug,
    profile: plan.profile,
    project: plan.project,
    composeFile: plan.paths.composeFile,
    manifest,
    networks: s.networks,
    services: s.services,
    firewall: plan.firewall.engine,
    packageVersion: plan.packageVersion,
    createdAt,
    updatedAt: createdAt,
    state,
    ownerPid: process.pid,
    cloneUrls: s.cloneUrls,
    ...(plan.instance !== plan.slug ? { instance: plan.instance } : {}),
  };
}
