// The seam between the bottle lifecycle and whatever runs containers. A
// bottle-level interface, not a CLI wrapper: `bottles/` says what it needs
// (networks, a project up or down, logs, exec, a signal) and never how.
// Compose-only facts (bridge names in iptables, compose labels, `ps` output
// formats, `docker kill --signal`) stay in compose.ts; the fake (fake.ts)
// keeps its state in memory so start/stop/cleanup logic is unit-tested
// without Docker.
import { BottleError } from "../errors.js";
import type { NetworkPlan, Plan } from "../plan/index.js";

/** One bottle's deployment: a compose project today. */
export interface ProjectRef {
  slug: string;
  project: string;
  /** The rendered compose file in the state dir. */
  file: string;
}

export interface ContainerInfo {
  name: string;
  service: string;
  slug: string;
  /** created | running | restarting | paused | exited | dead | removing */
  state: string;
  health?: string;
  exitCode?: number;
}

export interface NetworkInfo {
  name: string;
  slug: string;
}

/** Every label must match. */
export type LabelFilter = Readonly<Record<string, string>>;

export interface UpOptions {
  /** Secrets reach the engine only here (compose: the subprocess env). */
  env: Readonly<Record<string, string | undefined>>;
  /** The project's container names, when the caller knows them (saves asking the engine). */
  containers?: readonly string[];
  signal?: AbortSignal;
}

export interface LogQuery {
  service?: string;
  tail?: number;
  since?: string;
  /** Prefix each line with its RFC 3339 timestamp (after the container name). */
  timestamps?: boolean;
}

export interface ExecRequest {
  service: string;
  argv: readonly string[];
  /** Values go to the subprocess env, never argv. */
  env?: Readonly<Record<string, string>>;
  stdin?: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

/** A command started in the background; the engine returns once it has started. */
export interface DetachedRequest {
  service: string;
  argv: readonly string[];
  /** Values go to the subprocess env, never argv. */
  env?: Readonly<Record<string, string>>;
  cwd?: string;
}

export interface ExecOutcome {
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface IsolationSupport {
  supported: boolean;
  reason: string;
}

export interface EngineCheck {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

export interface Engine {
  readonly kind: "compose" | "swarm" | "fake";
  /** doctor: is the engine there, and its orchestrator. */
  checks(): Promise<EngineCheck[]>;
  /** Build (or find) every image the plan runs that we build ourselves. */
  ensureImages(plan: Plan, onBuild: (image: string) => void, signal?: AbortSignal): Promise<void>;
  /** Subnets every network on the engine uses. */
  usedSubnets(signal?: AbortSignal): Promise<string[]>;
  /**
   * Throws SubnetTakenError when the subnet overlaps one in use (the allocator
   * retries). Takes no abort signal on purpose: killing the client of a create
   * does not stop the engine, which may make the network after its caller (and
   * a rollback) gave up on it. A create runs to its end; the caller checks for
   * cancellation after it and removes what was made.
   */
  createNetwork(net: NetworkPlan): Promise<void>;
  /** Networks already gone are fine. */
  removeNetworks(names: readonly string[]): Promise<void>;
  /** Whether the agent can be kept off the engine host's own ports. */
  isolation(): Promise<IsolationSupport>;
  isolate(bridge: string): Promise<void>;
  release(bridge: string): Promise<void>;
  /** Drop isolation rules of bridges that no longer exist; returns those bridges. */
  staleIsolation(): Promise<string[]>;
  /** Create and start every service; returns once all are started (readiness is the caller's: plan/readiness.ts). */
  up(p: ProjectRef, o: UpOptions): Promise<void>;
  down(p: ProjectRef): Promise<void>;
  ps(p: ProjectRef): Promise<ContainerInfo[]>;
  /** "<container> | <text>" lines, escape codes stripped, oldest first; undefined when the engine cannot say. */
  logs(p: ProjectRef, q: LogQuery, signal?: AbortSignal): Promise<string[] | undefined>;
  followLogs(p: ProjectRef, q: LogQuery, onLine: (line: string) => void, signal?: AbortSignal): Promise<void>;
  /** A timeout is an outcome ({ timedOut: true, exitCode: 124 }), not a throw. */
  exec(p: ProjectRef, r: ExecRequest): Promise<ExecOutcome>;
  /** Start argv in the service's container and return at once (nothing is kept open: the command reports through files). */
  execDetached(p: ProjectRef, r: DetachedRequest): Promise<void>;
  signal(p: ProjectRef, service: string, sig: "HUP" | "TERM" | "KILL"): Promise<void>;
  list(labels: LabelFilter): Promise<{ containers: ContainerInfo[]; networks: NetworkInfo[] }>;
  /** Remove every container and network carrying these labels. */
  removeAll(labels: LabelFilter): Promise<{ containers: string[]; networks: string[] }>;
}

export type EngineOp = { [K in keyof Engine]: Engine[K] extends (...a: never[]) => unknown ? K : never }[keyof Engine];

/** The subnet asked for overlaps one the engine already uses. */
export class SubnetTakenError extends BottleError {
  constructor(message: string) {
    super("docker", message);
  }
}
