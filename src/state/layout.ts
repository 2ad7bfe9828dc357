// The state dir of one bottle, from its slug: the only module that joins
// state paths. Everything else asks a layout where a file lives.
import nodePath from "node:path";
import { FILES, upstreamCaName } from "../contracts/mounts.js";

export interface BottleLayout {
  /** The state root every bottle lives under. */
  root: string;
  slug: string;
  stateDir: string;
  metadataFile: string;
  /** What the plan is resolved from again when grants change (the profile as started). */
  planInputFile: string;
  grantsFile: string;
  composeFile: string;
  composeLog: string;
  execLog: string;
  lockFile: string;
  firewallConfigDir: string;
  firewallCaDir: string;
  egressConfigDir: string;
  egressCaDir: string;
  trustDir: string;
  accessDir: string;
  queueDir: string;
  /** Host-only task records (what was asked, how it ended); the agent cannot write here. */
  tasksDir: string;
  /** Per-task dirs the agent's task wrapper writes (output segments, pid, exit code): mounted read-write into the agent. */
  taskIoDir: string;
  gitGateConfigDir: string;
  knownHostsDir: string;
  firewallConfigFile: string;
  pipelockConfigFile: string;
  egressConfigFile: string;
  gitGateConfigFile: string;
  firewallCaCert: string;
  firewallCaKey: string;
  egressCaCert: string;
  egressCaKey: string;
  trustBundle: string;
  trustFirewallCa: string;
  trustEgressCa: string;
  accessFile: string;
  mcpConfigFile: string;
}

/** Locks live beside the bottles, not in their dirs: a purge must not drop a held lock. */
export const locksDir = (root: string) => nodePath.join(root, ".locks");

export function layoutOf(root: string, slug: string): BottleLayout {
  const dir = nodePath.join(root, slug);
  const at = (...p: string[]) => nodePath.join(dir, ...p);
  return {
    root,
    slug,
    stateDir: dir,
    metadataFile: at("metadata.json"),
    planInputFile: at("plan-input.json"),
    grantsFile: at("grants.json"),
    composeFile: at("docker-compose.yml"),
    composeLog: at("compose.log"),
    execLog: at("exec.jsonl"),
    lockFile: nodePath.join(locksDir(root), `${slug}.lock`),
    firewallConfigDir: at("firewall"),
    firewallCaDir: at("firewall-ca"),
    egressConfigDir: at("egress"),
    egressCaDir: at("egress-ca"),
    trustDir: at("trust"),
    accessDir: at("access"),
    queueDir: at("queue"),
    tasksDir: at("tasks"),
    taskIoDir: at("task-io"),
    gitGateConfigDir: at("git-gate"),
    knownHostsDir: at("git-gate", FILES.knownHostsDir),
    firewallConfigFile: at("firewall", FILES.firewallConfig),
    pipelockConfigFile: at("firewall", FILES.pipelockConfig),
    egressConfigFile: at("egress", FILES.egressConfig),
    gitGateConfigFile: at("git-gate", FILES.gitGateConfig),
    firewallCaCert: at("firewall-ca", FILES.caCert),
    firewallCaKey: at("firewall-ca", FILES.caKey),
    egressCaCert: at("egress-ca", FILES.caCert),
    egressCaKey: at("egress-ca", FILES.caKey),
    trustBundle: at("trust", FILES.trustBundle),
    trustFirewallCa: at("trust", FILES.firewallCaPublic),
    trustEgressCa: at("trust", FILES.egressCaPublic),
    accessFile: at("access", FILES.access),
    mcpConfigFile: at("access", FILES.mcpConfig),
  };
}

/** The i-th extra upstream CA (network.trust) in the trust dir. */
export const upstreamCaFile = (l: BottleLayout, i: number) => nodePath.join(l.trustDir, upstreamCaName(i));

/** The host's CA store (network.trust: [system]) in the trust dir. */
export const systemCaFile = (l: BottleLayout) => nodePath.join(l.trustDir, FILES.systemCa);

/** An upstream's pinned host keys, mounted into the git gate. */
export const knownHostsFile = (l: BottleLayout, upstream: string) => nodePath.join(l.knownHostsDir, upstream);

/** A task's host-only record. */
export const taskRecordFile = (l: BottleLayout, id: string) => nodePath.join(l.tasksDir, `${id}.json`);

/** A cancel request for a task (its own file, so a reader finalizing the record cannot drop it). */
export const taskCancelFile = (l: BottleLayout, id: string) => nodePath.join(l.tasksDir, `${id}.cancel`);

/** Where a task's dir is made and filled before it is renamed into task-io (host-only). */
export const taskStagingDir = (l: BottleLayout, id: string) => nodePath.join(l.tasksDir, `${id}.io`);

/** A task's dir the agent writes (host side). */
export const taskIoDirOf = (l: BottleLayout, id: string) => nodePath.join(l.taskIoDir, id);

/** A file in a task's dir (host side). */
export const taskIoFile = (l: BottleLayout, id: string, name: string) => nodePath.join(l.taskIoDir, id, name);

/** A sidecar's ready dir: mounted read-write into that sidecar only, at MOUNTS.ready. */
export const readyDirOf = (l: BottleLayout, service: string) => nodePath.join(l.stateDir, "ready", service);

/** The file a sidecar writes into its ready dir once it serves. */
export const readyFileOf = (l: BottleLayout, service: string) => nodePath.join(l.stateDir, "ready", service, FILES.ready);
