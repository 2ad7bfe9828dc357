// The core of `bottle_render` / `bottle render`: manifest + profile -> plan ->
// compose and sidecar configs. No side effects.
import { getProfile, loadManifest, manifestPath } from "../manifest/index.js";
import { resolvePlan, type Plan, type Subnets } from "../plan/index.js";
import { credentialInput, credentialWarnings, type CredentialWarning } from "../plan/credential-warnings.js";
import { agentProxyUrl, renderBottle, type RenderedFile } from "../render/index.js";
import { packageRoot, stateRoot } from "../state/root.js";

export interface RenderRequest {
  profile: string;
  manifest?: string;
  slug?: string;
  /** Real subnets when the lifecycle has allocated them; else a preview. */
  subnets?: Subnets;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface PlanSummary {
  slug: string;
  profile: string;
  project: string;
  manifest: string;
  stateDir: string;
  firewall: "builtin" | "pipelock";
  services: Array<{ service: string; container: string; image: string }>;
  networks: Array<{ name: string; subnet: string; internal: boolean }>;
  /** True when subnets are placeholders (they are allocated at start). */
  subnetsArePreview: boolean;
  agentProxy: string;
  allow: string[];
  routes: Array<{ name: string; host: string; pathPrefix: string; header: string; env: string[] }>;
  cloneUrls: Array<{ name: string; url: string }>;
  /** Env var *names* whose values are taken from the host at start. */
  forwardedEnv: string[];
  secretEnv: string[];
}

export interface RenderOutcome {
  plan: Plan;
  summary: PlanSummary;
  composeYaml: string;
  files: RenderedFile[];
  /** Things in the profile that will not work as the user likely expects (computed, not logged). */
  warnings: CredentialWarning[];
}

export function renderProfile(req: RenderRequest): RenderOutcome {
  const env = req.env ?? process.env;
  const file = manifestPath(req.manifest, env, req.cwd);
  const loaded = loadManifest(file);
  const profile = getProfile(loaded, req.profile);
  const plan = resolvePlan({
    profileName: req.profile,
    profile,
    defaultFirewall: loaded.manifest.defaults.firewall,
    ...(req.slug !== undefined ? { slug: req.slug } : {}),
    ...(req.subnets ? { subnets: req.subnets } : {}),
    stateRoot: stateRoot(env),
    packageRoot: packageRoot(),
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
