// resolve: profile + options -> plan. The plan fixes every name, path, port,
// env *name* and image a bottle needs, so render and the lifecycle never
// decide anything on their own. It never holds a secret value. Pure: no
// file system, clock, randomness or process state (the caller looks those up).
import { PORTS } from "../contracts/mounts.js";
import { AGENT_USER_HOST, ENV_REF_RE, isHostKeyLine, sshUrlHost, TRUST_SYSTEM, type Profile } from "../manifest/index.js";
import { PACKAGE_VERSION } from "../package.js";
import type { Grant } from "../state/grants.js";
import { layoutOf, type BottleLayout } from "../state/layout.js";
import { validateSlug } from "../state/slug.js";
import { bottleLabels, bridgeName, containerName, networkName, PIPELOCK_IMAGE, projectName } from "./names.js";

export const DEFAULT_SUBNET_POOL = "10.213.0.0/16";

export interface Subnets {
  internal: string;
  egress: string;
}

export interface NetworkPlan {
  /** Docker network name. */
  name: string;
  subnet: string;
  internal: boolean;
  /** Linux bridge name (≤ 15 chars) so host firewall rules can name it. */
  bridge: string;
  labels: Record<string, string>;
}

export interface BuiltImage {
  /** Tag including the package version, e.g. bot-bottle/egress:0.1.0. */
  image: string;
  /** Dockerfile.<name> in the package root. */
  dockerfile: string;
  context: string;
}

export interface ServiceBase {
  service: string;
  containerName: string;
  port: number;
}

export interface FirewallPlan extends ServiceBase {
  engine: "builtin" | "pipelock";
  image: string;
  build?: BuiltImage;
  /** Domains the firewall lets through: the profile's plus every routed host. */
  allow: string[];
  allowCidrs: string[];
  /** Host paths of extra CA files trusted for upstream TLS (copied into the trust dir). */
  trustFiles: string[];
  /** `network.trust: [system]`: the host's CA store is trusted too (found and copied at start). */
  trustSystem: boolean;
  /** Where egress injects credentials (a route's host and port): never intercepted by the firewall, and nothing else is. */
  passthrough: Array<{ host: string; port: number }>;
  /** Env names whose values the firewall watches for (egress credentials). */
  canaryEnv: string[];
  canaryExempt: Array<{ host: string; header: string; env: string }>;
}

export interface EgressRoutePlan {
  name: string;
  host: string;
  port: number;
  pathPrefix: string;
  header: string;
  /** Template like "Bearer ${GITHUB_TOKEN}"; resolved only inside the egress sidecar. */
  valueTemplate: string;
  envNames: string[];
  /** Set on a route a supervise grant added (never a credential the profile does not already hold). */
  grantId?: string;
}

export interface EgressPlan extends ServiceBase {
  image: string;
  build: BuiltImage;
  routes: EgressRoutePlan[];
  /** Secret env names egress holds (bare names in the compose file). */
  envNames: string[];
  /** `egress.credentials`: more hosts a supervise grant may send each credential to. */
  credentialHosts?: Record<string, string[]>;
}

export interface GitUpstreamPlan {
  name: string;
  url: string;
  /** Host of the SSH URL, for extra_hosts pinning. */
  host: string;
  address?: string;
  identityFile: string;
  knownHosts: { kind: "file"; path: string } | { kind: "inline"; line: string };
  policy: { pushRefs: string[]; protected: string[]; allowForce: boolean; allowDelete: boolean; maxPushBytes: number };
  /** What the agent clones: git://<gate>/<name>. */
  cloneUrl: string;
}

export interface GitGatePlan extends ServiceBase {
  image: string;
  build: BuiltImage;
  upstreams: GitUpstreamPlan[];
}

export interface SupervisePlan extends ServiceBase {
  image: string;
  build: BuiltImage;
  url: string;
}

export interface AgentPlan {
  service: "agent";
  containerName: string;
  image: string;
  build?: { context: string; dockerfile?: string | undefined };
  runtime: "runc" | "runsc";
  /** Numeric uid:gid the agent runs as (profile `user`, `host` resolved); absent: the image's user. */
  user?: string;
  env: Record<string, string>;
  forwardEnv: string[];
  /** Only set when the file exists and is non-empty (checked at resolve time). */
  envFile?: string;
  resources: { cpus?: number; memory?: string; pids: number };
}

export interface Plan {
  slug: string;
  /**
   * The bottle's name on the engine (containers, project, networks, labels):
   * its slug, except for a bottle claimed from the warm pool, which keeps the
   * name it was started under (containers cannot be relabelled).
   */
  instance: string;
  profile: string;
  project: string;
  packageVersion: string;
  labels: Record<string, string>;
  /** The uid:gid our sidecars run as, so they can read 0600 files we wrote. */
  hostUser: { uid: number; gid: number };
  /** The bottle's state dir (state/layout.ts). */
  paths: BottleLayout;
  networks: { internal: NetworkPlan; egress: NetworkPlan };
  firewall: FirewallPlan;
  egress?: EgressPlan;
  gitGate?: GitGatePlan;
  supervise?: SupervisePlan;
  agent: AgentPlan;
  /** The live supervise grants this plan includes. */
  grants: readonly Grant[];
}

export interface ResolveOptions {
  profileName: string;
  profile: Profile;
  /** Manifest default engine, used when the profile does not choose. */
  defaultFirewall: "builtin" | "pipelock";
  /** The caller picks a default (state/slug.ts defaultSlug). */
  slug: string;
  /** The engine-side name when it is not the slug (a bottle claimed from the warm pool). */
  instance?: string;
  stateRoot: string;
  /** Allocated by the lifecycle; absent for a pure render preview. */
  subnets?: Subnets;
  /** Folder holding Dockerfile.<name> (the installed package root). */
  packageRoot: string;
  /** The uid:gid our sidecars run as (the host user, so they read the 0600 files we write). */
  hostUser: { uid: number; gid: number };
  /** The profile's env_file exists and is non-empty (it is used only then). */
  envFileUsable?: boolean;
  /** Live supervise grants (the caller drops expired ones): each adds to the firewall, egress or git gate. */
  grants?: readonly Grant[];
}

/** Placeholder subnets for a render that allocates nothing (the first two /28s of the default pool). */
export const PREVIEW_SUBNETS: Subnets = { internal: "10.213.0.0/28", egress: "10.213.0.16/28" };

export function resolvePlan(o: ResolveOptions): Plan {
  const slug = validateSlug(o.slug);
  const instance = o.instance === undefined ? slug : validateSlug(o.instance);
  const p = o.profile;
  const labels = bottleLabels(instance, o.profileName, o.stateRoot);
  const subnets = o.subnets ?? PREVIEW_SUBNETS;
  const hostUser = o.hostUser;
  const built = (name: string): BuiltImage => ({
    image: `bot-bottle/${name}:${PACKAGE_VERSION}`,
    dockerfile: `Dockerfile.${name}`,
    context: o.packageRoot,
  });
  const network = (kind: "internal" | "egress", subnet: string): NetworkPlan => {
    const name = networkName(instance, kind);
    return { name, subnet, internal: kind === "internal", bridge: bridgeName(name), labels };
  };

  const routes: EgressRoutePlan[] = p.egress.routes.map((r) => ({
    name: r.name ?? `${r.host}${r.path_prefix === "/" ? "" : r.path_prefix}`.replace(/[^a-z0-9._/-]/gi, "-").toLowerCase(),
    host: r.host.toLowerCase(),
    port: r.port,
    pathPrefix: r.path_prefix,
    header: r.header,
    valueTemplate: r.value,
    envNames: unique([...r.value.matchAll(ENV_REF_RE)].map((m) => m[1]!)),
  }));
  const routedHosts = unique(routes.map((r) => r.host));
  // A grant can't add a credential: canaries and egress env come from the profile's routes.
  const egressEnv = unique(routes.flatMap((r) => r.envNames));
  const grants = o.grants ?? [];
  const grantRoutes: EgressRoutePlan[] = grants.flatMap((g) =>
    g.kind === "egress_route" && g.route
      ? [
          {
            name: `grant-${g.id}`,
            host: g.target,
            port: g.route.port,
            pathPrefix: g.route.path_prefix,
            header: g.route.header,
            valueTemplate: g.route.value,
            envNames: unique([...g.route.value.matchAll(ENV_REF_RE)].map((m) => m[1]!)),
            grantId: g.id,
          },
        ]
      : [],
  );
  const grantedHosts = grantRoutes.map((r) => r.host);
  const grantedDomains = grants.filter((g) => g.kind === "domain").map((g) => g.target);
  const grantedRefs = grants.filter((g) => g.kind === "git_ref").map((g) => g.target);

  const engine = p.firewall ?? o.defaultFirewall;
  const fwName = containerName("firewall", instance);
  const firewall: FirewallPlan = {
    service: "firewall",
    containerName: fwName,
    engine,
    port: engine === "pipelock" ? PORTS.pipelock : PORTS.firewall,
    image: engine === "pipelock" ? PIPELOCK_IMAGE : built("egress").image,
    ...(engine === "builtin" ? { build: built("egress") } : {}),
    allow: unique([...p.network.allow.map((d) => d.toLowerCase()), ...routedHosts, ...grantedDomains, ...grantedHosts]),
    allowCidrs: [...p.network.allow_cidrs],
    trustFiles: p.network.trust.filter((t) => t !== TRUST_SYSTEM),
    trustSystem: p.network.trust.includes(TRUST_SYSTEM),
    passthrough: uniqueBy(
      [...routes, ...grantRoutes].map((r) => ({ host: r.host, port: r.port })),
      (d) => `${d.host}:${d.port}`,
    ),
    canaryEnv: egressEnv,
    canaryExempt: [...routes, ...grantRoutes].flatMap((r) => r.envNames.map((env) => ({ host: r.host, header: r.header, env }))),
  };

  const egress: EgressPlan | undefined = routes.length
    ? {
        service: "egress",
        containerName: containerName("egress", instance),
        port: PORTS.egress,
        image: built("egress").image,
        build: built("egress"),
        routes: [...routes, ...grantRoutes],
        envNames: egressEnv,
        ...credentialHosts(p),
      }
    : undefined;

  const gateName = containerName("git-gate", instance);
  const gitGate: GitGatePlan | undefined = p.git.upstreams.length
    ? {
        service: "git-gate",
        containerName: gateName,
        port: PORTS.gitDaemon,
        image: built("git-gate").image,
        build: built("git-gate"),
        upstreams: p.git.upstreams.map((u) => ({
          name: u.name,
          url: u.url,
          host: sshUrlHost(u.url),
          ...(u.address ? { address: u.address } : {}),
          identityFile: u.identity_file,
          knownHosts: isHostKeyLine(u.known_hosts) ? { kind: "inline", line: u.known_hosts.trim() } : { kind: "file", path: u.known_hosts },
          policy: {
            pushRefs: unique([...u.policy.push_refs, ...grantedRefs]),
            protected: u.policy.protected,
            allowForce: u.policy.allow_force,
            allowDelete: u.policy.allow_delete,
            maxPushBytes: u.policy.max_push_bytes,
          },
          cloneUrl: `git://${gateName}/${u.name}`,
        })),
      }
    : undefined;

  const supervise: SupervisePlan | undefined = p.supervise
    ? {
        service: "supervise",
        containerName: containerName("supervise", instance),
        port: PORTS.supervise,
        image: built("supervise").image,
        build: built("supervise"),
        url: `http://supervise:${PORTS.supervise}/mcp`,
      }
    : undefined;

  const agent: AgentPlan = {
    service: "agent",
    containerName: containerName("agent", instance),
    image: p.image ?? (p.build ? `bottle-agent-${o.profileName}:local` : "bottle-agent:latest"),
    ...(p.build ? { build: p.build } : {}),
    runtime: p.runtime,
    ...(p.user ? { user: p.user === AGENT_USER_HOST ? `${hostUser.uid}:${hostUser.gid}` : p.user } : {}),
    env: p.env,
    forwardEnv: unique(p.forward_env),
    ...(p.env_file && o.envFileUsable ? { envFile: p.env_file } : {}),
    resources: { ...(p.resources.cpus ? { cpus: p.resources.cpus } : {}), ...(p.resources.memory ? { memory: p.resources.memory } : {}), pids: p.resources.pids ?? 512 },
  };

  return {
    slug,
    instance,
    profile: o.profileName,
    project: projectName(instance),
    packageVersion: PACKAGE_VERSION,
    labels,
    hostUser,
    paths: layoutOf(o.stateRoot, slug),
    networks: { internal: network("internal", subnets.internal), egress: network("egress", subnets.egress) },
    firewall,
    ...(egress ? { egress } : {}),
    ...(gitGate ? { gitGate } : {}),
    ...(supervise ? { supervise } : {}),
    agent,
    grants,
  };
}

function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

/** The first of each key, in order. */
function uniqueBy<T>(xs: T[], key: (x: T) => string): T[] {
  const seen = new Set<string>();
  return xs.filter((x) => !seen.has(key(x)) && Boolean(seen.add(key(x))));
}

/** Only present when the manifest lists some, so plans without it are unchanged. */
function credentialHosts(p: Profile): { credentialHosts?: Record<string, string[]> } {
  const entries = Object.entries(p.egress.credentials).map(([env, c]) => [env, unique(c.hosts.map((h) => h.toLowerCase()))] as const);
  return entries.length ? { credentialHosts: Object.fromEntries(entries) } : {};
}
