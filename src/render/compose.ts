// render: plan -> compose object. Pure: no I/O, no clock, no randomness, so
// the same plan always gives the same file (and snapshots mean something).
import { FILES, GIT_GATE_CONFIG_PATH, gitIdentityPath, MOUNTS, TRUST_BUNDLE } from "../contracts/mounts.js";
import type { BuiltImage, Plan } from "../plan/index.js";
import { readyDirOf } from "../state/layout.js";

export interface ComposeBind {
  type: "bind";
  source: string;
  target: string;
  read_only: boolean;
}

export interface ComposeService {
  image: string;
  build?: { context: string; dockerfile?: string };
  pull_policy?: "never" | "build" | "missing";
  container_name: string;
  command?: string[];
  init?: boolean;
  user?: string;
  runtime?: string;
  environment?: string[];
  env_file?: string[];
  volumes?: ComposeBind[];
  networks: Record<string, { aliases?: string[] }>;
  extra_hosts?: string[];
  dns_opt?: string[];
  depends_on?: Record<string, { condition: "service_started" }>;
  labels: Record<string, string>;
  security_opt: string[];
  cap_drop: string[];
  read_only?: boolean;
  tmpfs?: string[];
  pids_limit: number;
  mem_limit?: string;
  cpus?: number;
  restart: "no";
  stop_grace_period: string;
}

export interface ComposeFile {
  name: string;
  services: Record<string, ComposeService>;
  networks: Record<"internal" | "egress", { external: true; name: string }>;
}

const SIDECAR_CAP_DROP = ["ALL"];
const AGENT_CAP_DROP = ["NET_RAW", "NET_ADMIN", "SYS_ADMIN", "SYS_PTRACE", "SYS_MODULE", "MKNOD", "AUDIT_WRITE"];
const HARDENING = { security_opt: ["no-new-privileges:true"], restart: "no" as const, stop_grace_period: "2s" };

const bind = (source: string, target: string, read_only = true): ComposeBind => ({ type: "bind", source, target, read_only });
const builtImage = (b: BuiltImage) => ({ image: b.image, build: { context: b.context, dockerfile: b.dockerfile }, pull_policy: "never" as const });

/**
 * Every variable a common client reads its CA bundle from, all pointing at
 * the bottle's bundle (public roots plus the firewall's and egress's CAs),
 * so curl, Python (ssl, requests, pip), Node, npm, git, AWS SDKs, cargo and
 * Deno trust the intercepting proxies without per-tool setup.
 */
export const AGENT_CA_ENV = [
  "NODE_EXTRA_CA_CERTS",
  "SSL_CERT_FILE",
  "REQUESTS_CA_BUNDLE",
  "GIT_SSL_CAINFO",
  "CURL_CA_BUNDLE",
  "PIP_CERT",
  "AWS_CA_BUNDLE",
  "NPM_CONFIG_CAFILE",
  "CARGO_HTTP_CAINFO",
  "DENO_CERT",
] as const;

/** The proxy URL the agent uses: egress when it exists, else the firewall. */
export function agentProxyUrl(plan: Plan): string {
  return plan.egress ? `http://egress:${plan.egress.port}` : `http://${plan.firewall.containerName}:${plan.firewall.port}`;
}

export function agentNoProxy(plan: Plan): string {
  return ["localhost", "127.0.0.1", ...(plan.supervise ? ["supervise"] : []), ...(plan.gitGate ? [plan.gitGate.containerName] : [])].join(",");
}

/**
 * Git config through the environment (GIT_CONFIG_COUNT, git >= 2.31): the
 * upstream's real URL is rewritten to the gate, so `git clone <upstream url>`
 * and pushes to it go through the gate, as does `git clone git://<gate>/<name>`.
 */
export function agentGitEnv(plan: Plan): string[] {
  const upstreams = plan.gitGate?.upstreams ?? [];
  if (!upstreams.length) return [];
  return [`GIT_CONFIG_COUNT=${upstreams.length}`, ...upstreams.flatMap((u, i) => [`GIT_CONFIG_KEY_${i}=url.${u.cloneUrl}.insteadOf`, `GIT_CONFIG_VALUE_${i}=${u.url}`])];
}

/**
 * The gate's extra_hosts: one entry per pinned host. Several upstreams on
 * one host pin it once (Docker refuses a repeated entry); the manifest
 * already refuses pins of one host to different addresses.
 */
export function pinnedHosts(upstreams: ReadonlyArray<{ host: string; address?: string }>): string[] {
  const pins = new Map<string, string>();
  for (const u of upstreams) if (u.address && !pins.has(u.host.toLowerCase())) pins.set(u.host.toLowerCase(), `${u.host}:${u.address}`);
  return [...pins.values()];
}

export function renderCompose(plan: Plan): ComposeFile {
  const { labels, paths } = plan;
  const user = `${plan.hostUser.uid}:${plan.hostUser.gid}`;
  // Each of our sidecars says it is ready in a dir only it mounts (plan/readiness.ts).
  const ready = (service: string) => bind(readyDirOf(paths, service), MOUNTS.ready, false);
  const services: Record<string, ComposeService> = {};
  const fw = plan.firewall;
  // With egress, the agent's one proxy is egress: the firewall is not on the
  // agent's network at all, so the agent cannot CONNECT to it directly and
  // reach a routed (passthrough) host in a tunnel no one scans. Egress and the
  // git gate reach it on the egress network (the alias for Swarm, which has no
  // container names). Without egress the agent's proxy is the firewall.
  const fwNetworks: ComposeService["networks"] = plan.egress ? { egress: { aliases: [fw.containerName] } } : { internal: { aliases: [fw.containerName] }, egress: {} };

  services.firewall =
    fw.engine === "builtin"
      ? {
          ...builtImage(fw.build!),
          container_name: fw.containerName,
          command: ["firewall", "--config", `${MOUNTS.firewallConfig}/${FILES.firewallConfig}`, "--port", String(fw.port)],
          init: true,
          user,
          environment: [...fw.canaryEnv],
          volumes: [bind(paths.firewallConfigDir, MOUNTS.firewallConfig), bind(paths.firewallCaDir, MOUNTS.firewallCa), bind(paths.trustDir, MOUNTS.trust), ready(fw.service)],
          networks: fwNetworks,
          labels,
          ...HARDENING,
          cap_drop: SIDECAR_CAP_DROP,
          read_only: true,
          tmpfs: ["/tmp"],
          pids_limit: 256,
          mem_limit: "512m",
        }
      : {
          image: fw.image,
          container_name: fw.containerName,
          command: ["run", "--config", `${MOUNTS.firewallConfig}/${FILES.pipelockConfig}`, "--listen", `0.0.0.0:${fw.port}`],
          user,
          // Pipelock's DLP scans its own env for secret values (scan_env), so
          // egress credentials given to it here become leak canaries.
          environment: ["PIPELOCK_HOME=/tmp/pipelock", ...fw.canaryEnv],
          volumes: [bind(paths.firewallConfigDir, MOUNTS.firewallConfig), bind(paths.firewallCaDir, MOUNTS.firewallCa)],
          networks: fwNetworks,
          labels,
          ...HARDENING,
          cap_drop: SIDECAR_CAP_DROP,
          read_only: true,
          tmpfs: ["/tmp"],
          pids_limit: 256,
          mem_limit: "512m",
        };

  if (plan.egress) {
    const eg = plan.egress;
    services.egress = {
      ...builtImage(eg.build),
      container_name: eg.containerName,
      command: ["egress", "--config", `${MOUNTS.egressConfig}/${FILES.egressConfig}`, "--port", String(eg.port)],
      init: true,
      user,
      // Bare names: `docker compose up` copies the values from its own
      // environment, so they never appear in this file or in argv.
      environment: [...eg.envNames],
      volumes: [bind(paths.egressConfigDir, MOUNTS.egressConfig), bind(paths.egressCaDir, MOUNTS.egressCa), bind(paths.trustDir, MOUNTS.trust), ready(eg.service)],
      networks: { internal: { aliases: ["egress"] }, egress: {} },
      labels,
      ...HARDENING,
      cap_drop: SIDECAR_CAP_DROP,
      read_only: true,
      tmpfs: ["/tmp"],
      pids_limit: 256,
      mem_limit: "512m",
    };
  }

  if (plan.gitGate) {
    const gg = plan.gitGate;
    services["git-gate"] = {
      ...builtImage(gg.build),
      container_name: gg.containerName,
      command: ["serve", "--config", GIT_GATE_CONFIG_PATH],
      init: true,
      // The host uid:gid reads the 0600 identity file without any capability;
      // the image gives ssh a passwd entry for it (nss_wrapper).
      user,
      volumes: [
        bind(paths.gitGateConfigDir, MOUNTS.gitGateConfig),
        // The push identity is mounted here and nowhere else.
        ...gg.upstreams.map((u) => bind(u.identityFile, gitIdentityPath(u.name))),
        ready(gg.service),
      ],
      networks: { internal: { aliases: [gg.containerName] }, egress: {} },
      ...(gg.upstreams.some((u) => u.address) ? { extra_hosts: pinnedHosts(gg.upstreams) } : {}),
      labels,
      ...HARDENING,
      // Writable root: the bare repositories under /srv/git can be large, so
      // they live on disk rather than in a memory-backed tmpfs.
      cap_drop: SIDECAR_CAP_DROP,
      pids_limit: 256,
      mem_limit: "1g",
    };
  }

  if (plan.supervise) {
    const sv = plan.supervise;
    services.supervise = {
      ...builtImage(sv.build),
      container_name: sv.containerName,
      command: ["--port", String(sv.port), "--queue", MOUNTS.queue, "--access", MOUNTS.access],
      init: true,
      user,
      volumes: [bind(paths.queueDir, MOUNTS.queue, false), bind(paths.accessDir, MOUNTS.access), ready(sv.service)],
      networks: { internal: { aliases: ["supervise"] } },
      labels,
      ...HARDENING,
      cap_drop: SIDECAR_CAP_DROP,
      read_only: true,
      tmpfs: ["/tmp"],
      pids_limit: 128,
      mem_limit: "256m",
    };
  }

  const a = plan.agent;
  const proxy = agentProxyUrl(plan);
  const noProxy = agentNoProxy(plan);
  const dependsOn: ComposeService["depends_on"] = {};
  // Started, not healthy: the lifecycle waits for each sidecar's ready file
  // itself (bottles/start.ts); `docker compose up` by hand still orders them.
  for (const s of Object.keys(services)) dependsOn[s] = { condition: "service_started" };
  services.agent = {
    image: a.image,
    ...(a.build ? { build: { context: a.build.context, ...(a.build.dockerfile ? { dockerfile: a.build.dockerfile } : {}) } } : {}),
    container_name: a.containerName,
    command: ["sleep", "infinity"],
    // An init as PID 1 forwards SIGTERM, so `down` takes under a second
    // instead of the 10 s timeout `sleep infinity` would otherwise cost.
    init: true,
    ...(a.runtime === "runsc" ? { runtime: "runsc" } : {}),
    // Also the default user of `docker exec`, so exec and tasks run as it too.
    ...(a.user ? { user: a.user } : {}),
    environment: [
      ...Object.entries(a.env).map(([k, v]) => `${k}=${v}`),
      ...["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"].map((k) => `${k}=${proxy}`),
      `NO_PROXY=${noProxy}`,
      `no_proxy=${noProxy}`,
      // Node >= 24's built-in fetch honours HTTPS_PROXY only with this set.
      "NODE_USE_ENV_PROXY=1",
      ...AGENT_CA_ENV.map((k) => `${k}=${TRUST_BUNDLE}`),
      ...(plan.supervise ? [`BOTTLE_SUPERVISE_URL=${plan.supervise.url}`, `BOTTLE_MCP_CONFIG=${MOUNTS.access}/mcp.json`] : []),
      ...agentGitEnv(plan),
      // Bare names: values come from the environment of `docker compose up`.
      ...a.forwardEnv,
    ],
    ...(a.envFile ? { env_file: [a.envFile] } : {}),
    // task-io is the one read-write bind into the agent: its tasks' output
    // and exit codes (bottles/tasks.ts), so the host reads them without
    // holding a pipe open. Only this bottle's dir; the host treats every file
    // in it as agent-written data.
    volumes: [bind(paths.trustDir, MOUNTS.trust), bind(paths.accessDir, MOUNTS.access), bind(paths.taskIoDir, MOUNTS.tasks, false)],
    networks: { internal: {} },
    // Names outside the bottle never resolve (only the proxies reach out):
    // fail a lookup in about a second instead of glibc's 5 s x 2 tries x
    // search domains, so a tool that ignores the proxy errors out promptly.
    dns_opt: ["timeout:1", "attempts:1"],
    depends_on: dependsOn,
    labels,
    ...HARDENING,
    cap_drop: AGENT_CAP_DROP,
    pids_limit: a.resources.pids,
    ...(a.resources.memory ? { mem_limit: a.resources.memory } : {}),
    ...(a.resources.cpus ? { cpus: a.resources.cpus } : {}),
  };

  return {
    name: plan.project,
    services,
    networks: {
      internal: { external: true, name: plan.networks.internal.name },
      egress: { external: true, name: plan.networks.egress.name },
    },
  };
}
