// compose file -> Swarm stack file. Pure: the rendered compose object (what a
// bottle is, render/compose.ts) goes in, the stack `docker stack deploy`
// takes comes out, with the secrets it names. Same input, same output.
//
// What changes on a swarm, and why:
// - container_name, build, pull_policy, depends_on: Swarm names tasks
//   itself, never builds, and starts services in no order (the lifecycle
//   waits for each sidecar's ready file anyway).
// - security_opt is ignored by Swarm (no no-new-privileges). Sidecars already
//   drop ALL capabilities; the agent additionally drops SETUID, SETGID,
//   SETPCAP and SETFCAP, so nothing in it can change identity or give files
//   capabilities. What stays open: a setuid-root binary in the agent's image
//   still starts as euid 0 with the capabilities the agent keeps; compose's
//   no-new-privileges closes that, a swarm cannot (docs/kubernetes.md, the
//   swarm section).
// - restart "no" -> restart_policy none: a dead sidecar stays dead and says so.
// - mem_limit/cpus/pids_limit -> deploy.resources.limits; the agent's profile
//   resources are also its reservations, so the scheduler places it only
//   where they fit.
// - tmpfs -> a tmpfs mount (Swarm takes no `tmpfs:` list).
// - Credentials: a sidecar's bare env names (`docker compose up` copies
//   their values from its env) become Swarm secrets mounted as files under
//   /run/secrets, owned by the service's uid and readable by it only. A
//   small sh wrapper exports them into the sidecar's own process before it
//   execs the image's entrypoint: the values are never in the stack file,
//   the service spec or argv, and the sidecars are unchanged. The agent's
//   bare names (forwardEnv, chosen by the user to reach the agent) stay bare:
//   `docker stack deploy` fills them in from its environment, as compose does.
// - Placement: every service is pinned to the manager in this slice. The
//   sidecars must be (their bind mounts are the state dir, which approvals
//   and grants rewrite in place and then SIGHUP them: hot reload needs the
//   files, and Swarm configs are immutable). The agent is too, because its
//   trust bundle, access dir and task-io are binds of the same state dir;
//   `agentConstraints` (the engine: [] when the state root is shared by
//   every node, BOTTLE_SWARM_SHARED_STATE=1) lets the scheduler place it.
// - endpoint_mode dnsrr: nothing is published; the agent reaches the
//   proxies by name at their task address, without a virtual IP.
import { createHash } from "node:crypto";
import { BottleError } from "../errors.js";

/**
 * The part of the rendered compose file (render/compose.ts) a stack is made
 * from. Declared here, not imported: the engine reads the file render wrote
 * and does not depend on the renderer (test/unit/layers.test.ts).
 */
export interface ComposeService {
  image: string;
  command?: string[];
  init?: boolean;
  user?: string;
  runtime?: string;
  environment?: string[];
  env_file?: string[];
  volumes?: Array<{ type: "bind"; source: string; target: string; read_only: boolean }>;
  networks: Record<string, { aliases?: string[] }>;
  extra_hosts?: string[];
  labels: Record<string, string>;
  cap_drop: string[];
  read_only?: boolean;
  tmpfs?: string[];
  pids_limit: number;
  mem_limit?: string;
  cpus?: number;
  stop_grace_period: string;
}

export interface ComposeFile {
  name: string;
  services: Record<string, ComposeService>;
  networks: Record<string, { external: true; name: string }>;
}

export const STACK_VERSION = "3.9";
export const MANAGER_ONLY = ["node.role == manager"];
export const AGENT_SERVICE = "agent";
/** Capabilities the agent loses on a swarm, making up for the missing no-new-privileges. */
export const SWARM_AGENT_EXTRA_CAP_DROP = ["SETUID", "SETGID", "SETPCAP", "SETFCAP"];
export const SECRETS_DIR = "/run/secrets";

/** Exports every file in /run/secrets as an env var of the same name, then execs the entrypoint. `$$`: stack files interpolate `$`. */
export const SECRET_LOADER = `for f in ${SECRETS_DIR}/*; do [ -f "$$f" ] && export "$\${f##*/}=$$(cat "$$f")"; done; exec "$$@"`;

export interface StackMount {
  type: "bind" | "tmpfs";
  source?: string;
  target: string;
  read_only?: boolean;
}

export interface StackSecretRef {
  source: string;
  target: string;
  uid: string;
  gid: string;
  mode: number;
}

export interface StackService {
  image: string;
  entrypoint?: string[];
  command?: string[];
  init?: boolean;
  user?: string;
  environment?: string[];
  env_file?: string[];
  volumes?: StackMount[];
  networks: Record<string, { aliases?: string[] }>;
  extra_hosts?: string[];
  labels: Record<string, string>;
  cap_drop: string[];
  read_only?: boolean;
  stop_grace_period: string;
  secrets?: StackSecretRef[];
  deploy: {
    mode: "replicated";
    replicas: 1;
    endpoint_mode: "dnsrr";
    labels: Record<string, string>;
    restart_policy: { condition: "none" };
    placement: { constraints: string[] };
    resources: {
      limits: { memory?: string; cpus?: string; pids?: number };
      reservations?: { memory?: string; cpus?: string };
    };
  };
}

export interface StackFile {
  version: string;
  services: Record<string, StackService>;
  networks: Record<string, { external: true; name: string }>;
  secrets?: Record<string, { external: true; name: string }>;
}

/** A secret the engine creates before deploying: `docker secret create <name>` with the value of env var `env`. */
export interface StackSecret {
  name: string;
  env: string;
}

export interface StackOptions {
  /** The stack's name (the bottle's project). */
  stack: string;
  /** The entrypoint of each image whose service gets secrets: the loader execs it. */
  entrypoints: Readonly<Record<string, readonly string[]>>;
  /** Where Swarm may place the agent (default: the manager, see above). */
  agentConstraints?: readonly string[];
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SECRET_NAME_MAX = 64;

/** Swarm secret names are at most 64 characters; a long one keeps its start and gains a hash. */
export function secretName(stack: string, env: string): string {
  const name = `${stack}-${env}`;
  if (name.length <= SECRET_NAME_MAX) return name;
  const hash = createHash("sha256").update(name).digest("hex").slice(0, 8);
  return `${name.slice(0, SECRET_NAME_MAX - 9)}-${hash}`;
}

export function toStack(compose: ComposeFile, o: StackOptions): { stack: StackFile; secrets: StackSecret[] } {
  const services: Record<string, StackService> = {};
  const secrets = new Map<string, StackSecret>();
  // Refused before anything else is looked at: no stack can run it.
  for (const [name, s] of Object.entries(compose.services)) {
    if (s.runtime)
      throw new BottleError("bad-input", `service "${name}" asks for the ${s.runtime} runtime, which Docker Swarm cannot set`, "Use the compose engine for this profile (BOTTLE_ENGINE=compose).");
  }
  for (const [name, s] of Object.entries(compose.services)) {
    const isAgent = name === AGENT_SERVICE;
    const bare = isAgent ? [] : (s.environment ?? []).filter((e) => !e.includes("="));
    for (const env of bare) if (!ENV_NAME.test(env)) throw new BottleError("bad-input", `service "${name}": "${env}" is not an environment variable name`);
    const refs = bare.map((env) => {
      const secret = { name: secretName(o.stack, env), env };
      secrets.set(secret.name, secret);
      return secret;
    });
    services[name] = {
      image: s.image,
      ...(refs.length ? { entrypoint: loaderEntrypoint(name, s, o) } : {}),
      ...(s.command ? { command: [...s.command] } : {}),
      ...(s.init ? { init: true } : {}),
      ...(s.user ? { user: s.user } : {}),
      ...(s.environment ? { environment: isAgent ? [...s.environment] : s.environment.filter((e) => e.includes("=")) } : {}),
      ...(s.env_file ? { env_file: [...s.env_file] } : {}),
      volumes: [
        ...(s.volumes ?? []).map((v) => ({ type: "bind" as const, source: v.source, target: v.target, read_only: v.read_only })),
        ...(s.tmpfs ?? []).map((target) => ({ type: "tmpfs" as const, target })),
      ],
      networks: Object.fromEntries(Object.entries(s.networks).map(([n, v]) => [n, v.aliases ? { aliases: [...v.aliases] } : {}])),
      ...(s.extra_hosts ? { extra_hosts: [...s.extra_hosts] } : {}),
      labels: { ...s.labels },
      cap_drop: isAgent ? [...new Set([...s.cap_drop, ...SWARM_AGENT_EXTRA_CAP_DROP])] : [...s.cap_drop],
      ...(s.read_only ? { read_only: true } : {}),
      stop_grace_period: s.stop_grace_period,
      ...(refs.length ? { secrets: refs.map((r) => secretRef(r, s)) } : {}),
      deploy: {
        mode: "replicated",
        replicas: 1,
        endpoint_mode: "dnsrr",
        labels: { ...s.labels },
        restart_policy: { condition: "none" },
        placement: { constraints: [...(isAgent ? (o.agentConstraints ?? MANAGER_ONLY) : MANAGER_ONLY)] },
        resources: {
          limits: { ...(s.mem_limit ? { memory: s.mem_limit } : {}), ...(s.cpus ? { cpus: String(s.cpus) } : {}), pids: s.pids_limit },
          ...(isAgent && (s.mem_limit || s.cpus) ? { reservations: { ...(s.mem_limit ? { memory: s.mem_limit } : {}), ...(s.cpus ? { cpus: String(s.cpus) } : {}) } } : {}),
        },
      },
    };
  }
  const all = [...secrets.values()];
  return {
    stack: {
      version: STACK_VERSION,
      services,
      networks: Object.fromEntries(Object.entries(compose.networks).map(([k, v]) => [k, { external: true as const, name: v.name }])),
      ...(all.length ? { secrets: Object.fromEntries(all.map((s) => [s.name, { external: true as const, name: s.name }])) } : {}),
    },
    secrets: all,
  };
}

function loaderEntrypoint(name: string, s: ComposeService, o: StackOptions): string[] {
  const entrypoint = o.entrypoints[s.image];
  if (!entrypoint?.length) throw new BottleError("internal", `service "${name}" gets secrets but the entrypoint of ${s.image} is unknown`);
  return ["/bin/sh", "-c", SECRET_LOADER, "bottle-secrets", ...entrypoint];
}

/** Owned by the service's own uid:gid (it runs as the host user), readable by it alone. */
function secretRef(secret: StackSecret, s: ComposeService): StackSecretRef {
  const [uid = "0", gid = uid] = (s.user ?? "0:0").split(":");
  return { source: secret.name, target: secret.env, uid, gid, mode: 0o400 };
}
