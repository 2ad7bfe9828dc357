// Names that cross the host/container boundary: ports, mount points inside
// the sidecars, and the file names in the mounted directories. The host
// writes these files (render, state/layout) and the sidecars read them at
// these paths, so both sides take the names from here.

export const PORTS = {
  firewall: 3128,
  pipelock: 8888,
  egress: 3129,
  gitDaemon: 9418,
  supervise: 8750,
} as const;

/** Inside-container mount points. */
export const MOUNTS = {
  firewallConfig: "/etc/bottle/firewall",
  firewallCa: "/etc/bottle/firewall-ca",
  egressConfig: "/etc/bottle/egress",
  egressCa: "/etc/bottle/egress-ca",
  trust: "/etc/bottle/trust",
  access: "/etc/bottle/access",
  queue: "/var/lib/bottle/queue",
  /** The agent's task dirs (output, pid, exit code): read-write, the agent's own bottle only. */
  tasks: "/var/lib/bottle/tasks",
  gitGateConfig: "/etc/bottle/git-gate",
  gitSecrets: "/run/bottle/git",
  /** A sidecar's own read-write dir where it says it is ready (kit/ready.ts); the host waits on it at start. */
  ready: "/run/bottle/ready",
} as const;

/** File names inside the mounted directories (the same name on the host, in the state dir). */
export const FILES = {
  firewallConfig: "config.json",
  pipelockConfig: "pipelock.yaml",
  egressConfig: "config.json",
  gitGateConfig: "config.json",
  access: "current.json",
  mcpConfig: "mcp.json",
  caCert: "ca.pem",
  caKey: "ca.key",
  trustBundle: "bundle.pem",
  firewallCaPublic: "firewall-ca.pem",
  egressCaPublic: "egress-ca.pem",
  /** The host's CA store (network.trust: [system]), for the proxies' upstream TLS. */
  systemCa: "system-ca.pem",
  knownHostsDir: "known_hosts",
  /** Written by a sidecar into MOUNTS.ready once it serves. */
  ready: "ready",
} as const;

export const TRUST_BUNDLE = `${MOUNTS.trust}/${FILES.trustBundle}`;

/** Where the git gate reads its config (Dockerfile.git-gate's CMD names the same path). */
export const GIT_GATE_CONFIG_PATH = `${MOUNTS.gitGateConfig}/${FILES.gitGateConfig}`;

/** Where the i-th extra upstream CA (network.trust) lands in the trust dir. */
export const upstreamCaName = (i: number) => `upstream-ca-${i}.pem`;

/** An upstream's SSH identity inside the git gate (a compose secret). */
export const gitIdentityPath = (upstream: string) => `${MOUNTS.gitSecrets}/${upstream}/identity`;

/** An upstream's known_hosts file inside the git gate. */
export const gitKnownHostsPath = (upstream: string) => `${MOUNTS.gitGateConfig}/${FILES.knownHostsDir}/${upstream}`;
