// The Docker Swarm engine: one bottle = one stack (`docker stack deploy`)
// on a swarm whose manager is reached by BOTTLE_SWARM_MANAGER (a DOCKER_HOST
// value; default DOCKER_HOST), with overlay networks we create. Swarm has no
// exec API, so exec, signals and image copies go to the engine of the node
// running the task: BOTTLE_SWARM_NODES="node-name=tcp://addr:2375,..." names
// each node's engine (`bottle doctor` checks every one).
//
// Design of this slice (docs: swarm-stack.ts header):
// - sidecars run on the manager, which must be the machine bot-bottle runs
//   on (or share its state root at the same path): their bind mounts are the
//   state dir, and hot reload rewrites it in place. The agent runs there too,
//   unless BOTTLE_SWARM_SHARED_STATE=1 says the state root is at the same
//   path on every node: then the scheduler places it by its reservations.
// - images are built where bot-bottle runs (the compose engine's builder)
//   and copied to nodes without a registry: `docker save | docker load`
//   into each node whose copy differs (same image id = nothing to do).
// - credentials are Swarm secrets, created from the env of `up` over the
//   CLI's stdin and removed with the stack.
import { promises as fs } from "node:fs";
import nodePath from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import YAML from "yaml";
import { BottleError } from "../errors.js";
import { containerName, LABELS, overlaps, type NetworkPlan, type Plan } from "../plan/index.js";
import { cleanLogText } from "./compose.js";
import type { ContainerInfo, DetachedRequest, Engine, EngineCheck, ExecOutcome, ExecRequest, IsolationSupport, LabelFilter, LogQuery, NetworkInfo, ProjectRef, UpOptions } from "./engine.js";
import { SubnetTakenError } from "./engine.js";
import { builtImages, ensureImages } from "./images.js";
import { docker, type RunOptions, type RunResult } from "./run.js";
import { AGENT_SERVICE, type ComposeFile, toStack } from "./swarm-stack.js";

export const STACK_LABEL = "com.docker.stack.namespace";
export const SERVICE_LABEL = "com.docker.swarm.service.name";
export const SECRET_STACK_LABEL = "dev.bot-bottle.stack";
const UP_TIMEOUT_MS = 180_000;
/** New tasks for a service whose container failed to start (not one that ran and died). */
const START_RETRIES = 2;
const DOWN_TIMEOUT_MS = 90_000;
const NETWORK_RM_RETRY_MS = 15_000;

export interface SwarmConfig {
  /** DOCKER_HOST of the manager; undefined: the CLI's default engine. */
  manager: string | undefined;
  /** Swarm node name (its hostname, as `docker node ls` shows it) -> DOCKER_HOST of its engine. */
  nodes: ReadonlyMap<string, string>;
}

/** BOTTLE_SWARM_NODES="name=host,name=host". Bad input is refused whole. */
export function parseSwarmNodes(spec: string | undefined): Map<string, string> {
  const nodes = new Map<string, string>();
  for (const part of (spec ?? "")
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = part.indexOf("=");
    const name = eq > 0 ? part.slice(0, eq).trim() : "";
    const host = eq > 0 ? part.slice(eq + 1).trim() : "";
    if (!name || !/^(tcp|ssh|unix|npipe):\/\/\S+$/.test(host)) {
      throw new BottleError(
        "bad-input",
        `BOTTLE_SWARM_NODES: "${part}" is not name=<docker host>`,
        'Write BOTTLE_SWARM_NODES="node1=tcp://10.0.0.1:2376,node2=ssh://user@node2" (one entry per swarm node, named as `docker node ls` shows it).',
      );
    }
    if (nodes.has(name)) throw new BottleError("bad-input", `BOTTLE_SWARM_NODES names node "${name}" twice`);
    nodes.set(name, host);
  }
  return nodes;
}

export function swarmConfig(env: NodeJS.ProcessEnv): SwarmConfig {
  return { manager: env.BOTTLE_SWARM_MANAGER || env.DOCKER_HOST || undefined, nodes: parseSwarmNodes(env.BOTTLE_SWARM_NODES) };
}

/**
 * BOTTLE_SWARM_AGENT_PLACEMENT="node.role == worker; node.labels.agents == yes":
 * Swarm placement constraints for agents (";"-separated: a constraint may hold
 * a comma). Only with BOTTLE_SWARM_SHARED_STATE=1: without it the agent's
 * binds exist on the manager alone.
 */
export function agentPlacement(env: NodeJS.ProcessEnv): string[] {
  const constraints = (env.BOTTLE_SWARM_AGENT_PLACEMENT ?? "")
    .split(";")
    .map((c) => c.trim())
    .filter(Boolean);
  for (const c of constraints) {
    if (!/^[\w.-]+\s*(==|!=)\s*\S.*$/.test(c))
      throw new BottleError("bad-input", `BOTTLE_SWARM_AGENT_PLACEMENT: "${c}" is not a placement constraint`, 'Write e.g. "node.role == worker" or "node.labels.agents == yes".');
  }
  if (constraints.length && env.BOTTLE_SWARM_SHARED_STATE !== "1") {
    throw new BottleError(
      "bad-input",
      "BOTTLE_SWARM_AGENT_PLACEMENT needs BOTTLE_SWARM_SHARED_STATE=1",
      "Without a state root shared by every node, agents run on the manager (their binds exist only there).",
    );
  }
  return constraints;
}

export interface TaskRow {
  Name: string;
  Node: string;
  DesiredState: string;
  CurrentState: string;
  Error: string;
}

/** A failed task whose container never started, with retries left: Swarm gets to try it again. */
export function retryableStart(t: TaskRow, retriedSoFar: number): boolean {
  return /^starting container failed/.test(t.Error ?? "") && retriedSoFar < START_RETRIES;
}

/** A task's "Running 3 seconds ago" as a container state the lifecycle knows. */
export function taskState(currentState: string): string {
  const word = currentState.trim().split(/\s+/)[0]?.toLowerCase() ?? "";
  if (word === "running") return "running";
  if (word === "complete" || word === "failed" || word === "shutdown" || word === "orphaned") return "exited";
  if (word === "rejected") return "dead";
  if (word === "remove") return "removing";
  return "created";
}

/** "task: non-zero exit (3)" -> 3. */
export function taskExitCode(error: string): number | undefined {
  const m = /non-zero exit \((\d+)\)/.exec(error);
  return m ? Number(m[1]) : undefined;
}

/** The newest task per service of a stack (`docker stack ps` lists the newest first). */
export function currentTasks(stack: string, rows: readonly TaskRow[]): Map<string, TaskRow> {
  const out = new Map<string, TaskRow>();
  for (const r of rows) {
    // "bottle-x_agent.1" (stack ps --no-trunc) -> "agent"
    const m = new RegExp(`^${stack.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}_(.+?)\\.\\d+$`).exec(r.Name.trim());
    if (!m?.[1] || out.has(m[1])) continue;
    out.set(m[1], r);
  }
  return out;
}

/**
 * `docker service logs --timestamps` lines, "<task>@<node> | <ts> <text>"
 * (or with the timestamp first), as the lifecycle's "<container> | <text>".
 */
export function serviceLogLine(raw: string, name: string, timestamps: boolean): { ts: string; line: string } | undefined {
  const clean = cleanLogText(raw);
  const bar = clean.indexOf("|");
  if (bar < 0) return undefined;
  const head = clean.slice(0, bar).trim();
  let body = clean.slice(bar + 1).replace(/^ /, "");
  let ts = /^\d{4}-\d\d-\d\dT\S+/.exec(head)?.[0] ?? "";
  if (!ts) {
    ts = /^\d{4}-\d\d-\d\dT\S+/.exec(body)?.[0] ?? "";
    if (ts) body = body.slice(ts.length).replace(/^ /, "");
  }
  return { ts, line: `${name} | ${timestamps && ts ? `${ts} ` : ""}${body}` };
}

const labelArgs = (labels: LabelFilter) => Object.entries(labels).flatMap(([k, v]) => ["--filter", `label=${k}=${v}`]);
const lines = (r: RunResult) => r.stdout.split("\n").filter(Boolean);

export class SwarmEngine implements Engine {
  readonly kind = "swarm" as const;
  private readonly config: SwarmConfig;
  /** Where a service's task runs: "<stack>/<service>" -> node engine + container id. */
  private readonly located = new Map<string, { host: string | undefined; container: string }>();

  /**
   * BOTTLE_SWARM_SHARED_STATE=1: the state root is at the same path on every
   * node (a shared filesystem), so the agent's binds (trust bundle, access,
   * task-io) exist wherever it lands and Swarm's scheduler places it by its
   * reservations. Otherwise it is pinned to the manager with the sidecars.
   */
  private readonly sharedState: boolean;
  /** Where the scheduler may put agents (BOTTLE_SWARM_AGENT_PLACEMENT), with shared state only. */
  private readonly agentPlacement: string[];

  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {
    this.config = swarmConfig(env);
    this.sharedState = env.BOTTLE_SWARM_SHARED_STATE === "1";
    this.agentPlacement = agentPlacement(env);
  }

  /** docker against the manager. */
  private m(args: string[], o: RunOptions = {}): Promise<RunResult> {
    return this.on(this.config.manager, args, o);
  }

  private on(host: string | undefined, args: string[], o: RunOptions = {}): Promise<RunResult> {
    return docker(args, { timeout: 60_000, ...o, env: { ...(o.env ?? {}), ...(host ? { DOCKER_HOST: host } : {}) } });
  }

  private nodeHost(node: string): string {
    const host = this.config.nodes.get(node);
    if (host) return host;
    if (this.config.nodes.size === 0 && this.config.manager) return this.config.manager;
    throw new BottleError("docker", `no engine is given for swarm node "${node}"`, `Add "${node}=<docker host>" to BOTTLE_SWARM_NODES (run \`bottle doctor\`).`);
  }

  async checks(): Promise<EngineCheck[]> {
    const where = this.config.manager ? ` at ${this.config.manager}` : "";
    const info = await this.m(["info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.ServerVersion}}"], { reject: false, timeout: 15_000 }).catch((err: Error) => ({
      exitCode: 1,
      stdout: "",
      stderr: err.message,
      timedOut: false,
    }));
    const [state, control, version] = info.stdout.trim().split(" ");
    if (info.exitCode !== 0)
      return [
        {
          name: "swarm",
          ok: false,
          detail: `swarm manager unreachable${where}: ${info.stderr.trim().split("\n").pop() ?? ""}`,
          fix: "Set BOTTLE_SWARM_MANAGER (or DOCKER_HOST) to the manager's engine.",
        },
      ];
    if (state !== "active" || control !== "true") {
      return [
        {
          name: "swarm",
          ok: false,
          detail: `the engine${where} is ${state === "active" ? "a swarm worker, not a manager" : "not in a swarm"}`,
          fix: "Point BOTTLE_SWARM_MANAGER at a manager (`docker swarm init` makes one).",
        },
      ];
    }
    const checks: EngineCheck[] = [{ name: "swarm", ok: true, detail: `swarm manager${where} (engine ${version})` }];
    const ids = lines(await this.m(["node", "ls", "-q"], { timeout: 15_000 }));
    const nodes = lines(
      await this.m(
        [
          "node",
          "inspect",
          "--format",
          "{{.Description.Hostname}}\t{{.Spec.Role}}\t{{.Status.State}}\t{{.Spec.Availability}}\t{{.Description.Resources.NanoCPUs}}\t{{.Description.Resources.MemoryBytes}}",
          ...ids,
        ],
        { timeout: 15_000 },
      ),
    ).map((l) => {
      const [name = "?", role, state, availability, nano, mem] = l.split("\t");
      return { name, role, state, availability, cpus: Number(nano) / 1e9, memGiB: Math.round((Number(mem) / 2 ** 30) * 10) / 10 };
    });
    const nodeChecks = await Promise.all(
      nodes.map(async (n): Promise<EngineCheck> => {
        const what = `${n.role} ${n.state}/${n.availability}, ${n.cpus} CPUs, ${n.memGiB} GiB`;
        const host = this.config.nodes.get(n.name);
        if (!host)
          return { name: `node ${n.name}`, ok: false, detail: `${what}; no engine given for it (exec, signals and images need one)`, fix: `Add "${n.name}=<docker host>" to BOTTLE_SWARM_NODES.` };
        const r = await this.on(host, ["info", "--format", "{{.Name}}"], { reject: false, timeout: 15_000 }).catch((err: Error) => ({ exitCode: 1, stdout: "", stderr: err.message, timedOut: false }));
        if (r.exitCode !== 0)
          return { name: `node ${n.name}`, ok: false, detail: `${what}; its engine ${host} is unreachable`, fix: "Check BOTTLE_SWARM_NODES and that the node's engine listens there." };
        if (r.stdout.trim() !== n.name)
          return { name: `node ${n.name}`, ok: false, detail: `${what}; ${host} is node "${r.stdout.trim()}", not "${n.name}"`, fix: "Fix the node's entry in BOTTLE_SWARM_NODES." };
        return { name: `node ${n.name}`, ok: true, detail: `${what}; engine ${host}` };
      }),
    );
    for (const name of this.config.nodes.keys()) {
      if (!nodes.some((n) => n.name === name))
        nodeChecks.push({ name: `node ${name}`, ok: false, detail: "named in BOTTLE_SWARM_NODES but not in the swarm", fix: "Remove it from BOTTLE_SWARM_NODES or join it to the swarm." });
    }
    return [...checks, ...nodeChecks];
  }

  /** Build where bot-bottle runs, then copy to the nodes that will run each image. */
  async ensureImages(plan: Plan, onBuild: (image: string) => void, signal?: AbortSignal): Promise<void> {
    await ensureImages(plan, onBuild, signal);
    const sidecars = builtImages(plan).map((b) => b.image);
    const manager = this.config.manager;
    const targets = new Map<string | undefined, Set<string>>([[manager, new Set(sidecars)]]);
    // The agent runs on the manager, or (shared state) on any node: copy it to each.
    const agentHosts = this.sharedState ? [manager, ...this.config.nodes.values()] : [manager];
    for (const h of agentHosts) {
      if (!targets.has(h)) targets.set(h, new Set());
      targets.get(h)!.add(plan.agent.image);
    }
    const copies: Promise<void>[] = [];
    for (const [host, images] of targets) for (const image of images) copies.push(this.copyImage(image, host, onBuild, signal));
    await Promise.all(copies);
  }

  private async copyImage(image: string, host: string | undefined, onBuild: (image: string) => void, signal?: AbortSignal): Promise<void> {
    const idOf = (h: string | undefined) =>
      docker(["image", "inspect", "--format", "{{.Id}}", image], { reject: false, timeout: 30_000, ...(h ? { env: { DOCKER_HOST: h } } : {}), ...(signal ? { signal } : {}) }).then((r) =>
        r.exitCode === 0 ? r.stdout.trim() : undefined,
      );
    const [local, remote] = await Promise.all([idOf(undefined), idOf(host)]);
    if (!local || local === remote || !host) return;
    onBuild(`${image} -> ${host}`);
    // A shell pipe: the image streams between the engines, never through this process's memory.
    const r = await execa("bash", ["-o", "pipefail", "-c", 'docker save "$1" | DOCKER_HOST="$2" docker load -q', "copy-image", image, host], {
      reject: false,
      stdin: "ignore",
      timeout: 600_000,
      ...(signal ? { cancelSignal: signal } : {}),
    });
    if (r.exitCode !== 0) throw new BottleError("docker", `copying image ${image} to ${host} failed: ${String(r.stderr).trim().split("\n").slice(-3).join("; ")}`);
  }

  async usedSubnets(signal?: AbortSignal): Promise<string[]> {
    // Overlays must not overlap the manager's networks nor any node's own bridges.
    const hosts = [this.config.manager, ...this.config.nodes.values()];
    const all = await Promise.all(
      [...new Set(hosts)].map(async (h) => {
        const ids = lines(await this.on(h, ["network", "ls", "-q"], { timeout: 30_000, ...(signal ? { signal } : {}) }));
        if (!ids.length) return [];
        const r = await this.on(h, ["network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", ...ids], { timeout: 30_000, reject: false, ...(signal ? { signal } : {}) });
        return r.stdout.split(/\s+/).filter(Boolean);
      }),
    );
    return [...new Set(all.flat())];
  }

  async createNetwork(net: NetworkPlan): Promise<void> {
    // Attachable: a test (or an operator) can put a container beside the sidecars.
    const args = ["network", "create", "--driver", "overlay", "--attachable", "--subnet", net.subnet];
    // The agent's network: no gateway (no route to any node's ports) and IPsec
    // between nodes. BOTTLE_SWARM_ENCRYPT=0 leaves IPsec out for kernels
    // without ESP/AES-GCM (the test VMs': cross-node traffic would be dropped).
    if (net.internal) args.push("--internal", ...(this.env.BOTTLE_SWARM_ENCRYPT === "0" ? [] : ["--opt", "encrypted"]));
    for (const [k, v] of Object.entries(net.labels)) args.push("--label", `${k}=${v}`);
    args.push(net.name);
    let id: string;
    try {
      id = (await this.m(args, { timeout: 30_000 })).stdout.trim();
    } catch (err) {
      if (err instanceof Error && /overlap|Pool overlaps|address already in use/i.test(err.message)) throw new SubnetTakenError(err.message);
      throw err;
    }
    // A manager accepts an overlay whose subnet overlaps another and only
    // fails to allocate it later (its tasks then stay "New"). So check:
    // when an earlier network has an overlapping subnet, this one yields.
    const rival = await this.earlierOverlap(id, net.subnet).catch(async (err: unknown) => {
      await this.removeNetworks([id]).catch(() => {});
      throw err;
    });
    if (rival) {
      await this.removeNetworks([id]);
      throw new SubnetTakenError(`subnet ${net.subnet} overlaps network ${rival}`);
    }
  }

  /** The name of a network created before `id` whose subnet overlaps `subnet`, if any (ties: the smaller id is earlier). */
  private async earlierOverlap(id: string, subnet: string): Promise<string | undefined> {
    const ids = lines(await this.m(["network", "ls", "-q", "--no-trunc"], { timeout: 30_000 }));
    const r = await this.m(["network", "inspect", "--format", "{{.ID}}\t{{.Name}}\t{{json .Created}}\t{{range .IPAM.Config}}{{.Subnet}} {{end}}", ...ids], {
      timeout: 30_000,
      reject: false,
    });
    const rows = lines(r).map((l) => {
      const [nid = "", name = "", created = "", subnets = ""] = l.split("\t");
      return { id: nid, name, created: Date.parse(JSON.parse(created || '""') as string) || 0, subnets: subnets.split(" ").filter(Boolean) };
    });
    const mine = rows.find((x) => x.id === id);
    if (!mine) return undefined;
    const earlier = (x: (typeof rows)[number]) => x.created < mine.created || (x.created === mine.created && x.id < mine.id);
    return rows.find((x) => x.id !== id && earlier(x) && x.subnets.some((s) => overlaps(s, subnet)))?.name;
  }

  async removeNetworks(names: readonly string[]): Promise<void> {
    if (!names.length) return;
    // Right after `stack rm` the manager may still hold the removed tasks'
    // attachments for a moment ("in use"): retry for a few seconds.
    const t0 = Date.now();
    for (;;) {
      const r = await this.m(["network", "rm", ...names], { timeout: 30_000, reject: false });
      const real = r.stderr.split("\n").filter((l) => l.trim() && !/not found|No such network/i.test(l));
      if (r.exitCode === 0 || !real.length) return await this.nodesForget(names);
      if (!real.every((l) => /in use|active endpoints/i.test(l)) || Date.now() - t0 > NETWORK_RM_RETRY_MS) {
        throw new BottleError("docker", `could not remove network(s) ${names.join(", ")}: ${real.join("; ")}`);
      }
      await sleep(250);
    }
  }

  /**
   * A node that ran a task keeps its local copy of the overlay for a moment
   * after the manager removed it (it goes when the node hears of the
   * removal); wait for that so a stop or a rolled-back start leaves nothing
   * on any node when it returns. Bounded: a node that never catches up is
   * named, not waited on forever.
   */
  private async nodesForget(names: readonly string[]): Promise<void> {
    const hosts = [...new Set(this.config.nodes.values())].filter((h) => h !== this.config.manager);
    const t0 = Date.now();
    for (;;) {
      const held = await Promise.all(
        hosts.map(async (h) => {
          const r = await this.on(h, ["network", "ls", "--format", "{{.Name}}"], { reject: false, timeout: 30_000 });
          return lines(r).some((n) => names.includes(n)) ? h : undefined;
        }),
      );
      const still = held.filter((h): h is string => h !== undefined);
      if (!still.length) return;
      if (Date.now() - t0 > NETWORK_RM_RETRY_MS) {
        throw new BottleError("docker", `network(s) ${names.join(", ")} removed on the manager but still listed by ${still.join(", ")} after ${NETWORK_RM_RETRY_MS / 1000} s`);
      }
      await sleep(250);
    }
  }

  async isolation(): Promise<IsolationSupport> {
    return { supported: true, reason: "the agent's overlay is --internal: it has no gateway, so no route to any node's own ports" };
  }

  async isolate(): Promise<void> {}

  async release(): Promise<void> {}

  async staleIsolation(): Promise<string[]> {
    return [];
  }

  async up(p: ProjectRef, o: UpOptions): Promise<void> {
    const signal = o.signal ? { signal: o.signal } : {};
    const compose = YAML.parse(await fs.readFile(p.file, "utf8")) as ComposeFile;
    // Bare env names without a value stay unset, as compose leaves them; an
    // empty value too (Swarm refuses an empty secret; compose would set it empty).
    for (const [name, s] of Object.entries(compose.services)) {
      if (name !== AGENT_SERVICE && s.environment) s.environment = s.environment.filter((e) => e.includes("=") || Boolean(o.env[e]));
    }
    const needsEntrypoint = [
      ...new Set(
        Object.entries(compose.services)
          .filter(([n, s]) => n !== AGENT_SERVICE && (s.environment ?? []).some((e) => !e.includes("=")))
          .map(([, s]) => s.image),
      ),
    ];
    const entrypoints: Record<string, string[]> = {};
    for (const image of needsEntrypoint) {
      const r = await this.m(["image", "inspect", "--format", "{{json .Config.Entrypoint}}", image], { timeout: 30_000, ...signal });
      entrypoints[image] = (JSON.parse(r.stdout.trim()) as string[] | null) ?? [];
    }
    const { stack, secrets } = toStack(compose, { stack: p.project, entrypoints, ...(this.sharedState ? { agentConstraints: this.agentPlacement } : {}) });
    const labels = Object.values(compose.services)[0]?.labels ?? {};
    for (const s of secrets) {
      // One left by a failed earlier start would make create fail; it belongs to this bottle.
      await this.m(["secret", "rm", s.name], { reject: false, timeout: 30_000 });
      const labelArgv = Object.entries({ ...labels, [SECRET_STACK_LABEL]: p.project }).flatMap(([k, v]) => ["--label", `${k}=${v}`]);
      // The value goes over stdin: never argv, never a file we write. Not
      // cancellable (like network creates): a manager that finishes a create
      // after its client was killed would keep a credential nobody removes.
      o.signal?.throwIfAborted();
      await this.m(["secret", "create", ...labelArgv, s.name, "-"], { input: o.env[s.env] ?? "", timeout: 30_000 });
    }
    o.signal?.throwIfAborted();
    const file = nodePath.join(nodePath.dirname(p.file), "stack.yaml");
    await fs.writeFile(file, YAML.stringify(stack), { mode: 0o600 });
    // The agent's forwarded env names are filled in by the CLI from this env, as compose does.
    await this.m(["stack", "deploy", "--resolve-image", "never", "--prune", "-c", file, p.project], { env: { ...o.env }, timeout: 120_000, ...signal });
    await this.waitRunning(p, Object.keys(stack.services), o.signal);
  }

  private async tasks(stack: string): Promise<Map<string, TaskRow>> {
    const r = await this.m(["stack", "ps", stack, "--no-trunc", "--format", "{{json .}}"], { timeout: 30_000, reject: false });
    if (r.exitCode !== 0) return new Map();
    return currentTasks(
      stack,
      lines(r).map((l) => JSON.parse(l) as TaskRow),
    );
  }

  private async waitRunning(p: ProjectRef, services: readonly string[], signal?: AbortSignal): Promise<void> {
    const t0 = Date.now();
    const retried = new Map<string, number>();
    for (;;) {
      signal?.throwIfAborted();
      const tasks = await this.tasks(p.project);
      const failed = [...tasks].filter(([, t]) => ["exited", "dead"].includes(taskState(t.CurrentState)));
      // A task whose container never started (the engine's own transient
      // errors, e.g. "unable to remount dir as readonly ... device or resource
      // busy" when several tasks mount secrets at once) gets a new task, twice
      // at most; restart_policy stays none for anything that ran and died.
      const startFailures = failed.filter(([s, t]) => retryableStart(t, retried.get(s) ?? 0));
      for (const [s] of startFailures) {
        retried.set(s, (retried.get(s) ?? 0) + 1);
        await this.m(["service", "update", "--force", "--detach", `${p.project}_${s}`], { timeout: 60_000, ...(signal ? { signal } : {}) });
      }
      if (startFailures.length) {
        await sleep(250);
        continue;
      }
      if (failed.length) throw new BottleError("docker", `swarm task(s) failed: ${failed.map(([s, t]) => `${s} on ${t.Node || "no node"}: ${t.Error || t.CurrentState}`).join("; ")}`);
      if (services.every((s) => tasks.get(s) && taskState(tasks.get(s)!.CurrentState) === "running")) return;
      if (Date.now() - t0 > UP_TIMEOUT_MS) {
        const waiting = services
          .filter((s) => taskState(tasks.get(s)?.CurrentState ?? "") !== "running")
          .map((s) => `${s} (${tasks.get(s)?.CurrentState ?? "no task"}${tasks.get(s)?.Error ? `: ${tasks.get(s)!.Error}` : ""})`);
        throw new BottleError(
          "docker",
          `swarm tasks not running after ${UP_TIMEOUT_MS / 1000} s: ${waiting.join(", ")}`,
          "A task that stays pending found no node with the resources or the image it needs (`docker service ps --no-trunc`).",
        );
      }
      await sleep(250);
    }
  }

  async down(p: ProjectRef): Promise<void> {
    await this.removeStacks([p.project]);
  }

  /** stack rm, then wait until no node runs a container of them (networks can go only then), then their secrets. */
  private async removeStacks(stacks: readonly string[]): Promise<void> {
    if (!stacks.length) return;
    await this.m(["stack", "rm", ...stacks], { reject: false, timeout: 60_000 });
    for (const s of stacks) for (const k of this.located.keys()) if (k.startsWith(`${s}/`)) this.located.delete(k);
    const hosts = [...new Set([this.config.manager, ...this.config.nodes.values()])];
    const t0 = Date.now();
    for (;;) {
      const left = await Promise.all(
        hosts.map(async (h) => {
          const ids = await Promise.all(stacks.map((s) => this.on(h, ["ps", "-aq", "--filter", `label=${STACK_LABEL}=${s}`], { reject: false, timeout: 30_000 }).then(lines)));
          return ids.flat().length;
        }),
      );
      const services = (await Promise.all(stacks.map((s) => this.m(["service", "ls", "-q", "--filter", `label=${STACK_LABEL}=${s}`], { reject: false, timeout: 30_000 }).then(lines)))).flat().length;
      if (services === 0 && left.every((n) => n === 0)) break;
      if (Date.now() - t0 > DOWN_TIMEOUT_MS) throw new BottleError("docker", `services or containers of ${stacks.join(", ")} still exist ${DOWN_TIMEOUT_MS / 1000} s after docker stack rm`);
      await sleep(250);
    }
    const secrets = (await Promise.all(stacks.map((s) => this.m(["secret", "ls", "-q", "--filter", `label=${SECRET_STACK_LABEL}=${s}`], { reject: false, timeout: 30_000 }).then(lines)))).flat();
    if (secrets.length) await this.m(["secret", "rm", ...secrets], { reject: false, timeout: 30_000 });
  }

  async ps(p: ProjectRef): Promise<ContainerInfo[]> {
    const tasks = await this.tasks(p.project);
    return [...tasks].map(([service, t]) => {
      const state = taskState(t.CurrentState);
      const exitCode = taskExitCode(t.Error);
      return { name: containerName(service, p.slug), service, slug: p.slug, state, ...(state === "exited" ? { exitCode: exitCode ?? 0 } : {}) };
    });
  }

  private async services(p: ProjectRef): Promise<string[]> {
    const r = await this.m(["service", "ls", "--filter", `label=${STACK_LABEL}=${p.project}`, "--format", "{{.Name}}"], { reject: false, timeout: 30_000 });
    return lines(r)
      .map((n) => n.slice(p.project.length + 1))
      .sort();
  }

  async logs(p: ProjectRef, q: LogQuery, signal?: AbortSignal): Promise<string[] | undefined> {
    const services = q.service ? [q.service] : await this.services(p);
    if (!services.length) return undefined;
    const parts = await Promise.all(
      services.map(async (svc) => {
        const args = ["service", "logs", "--no-trunc", "--no-task-ids", "--timestamps"];
        if (q.tail !== undefined) args.push("--tail", String(q.tail));
        if (q.since) args.push("--since", q.since);
        args.push(`${p.project}_${svc}`);
        const r = await this.m(args, { timeout: 60_000, reject: false, ...(signal ? { signal } : {}) });
        if (r.exitCode !== 0) return undefined;
        // service logs writes the service's stdout and stderr to ours: both are its log.
        return `${r.stdout}\n${r.stderr}`
          .split("\n")
          .filter((l) => l.trim())
          .map((l) => serviceLogLine(l, containerName(svc, p.slug), q.timestamps === true))
          .filter((x): x is { ts: string; line: string } => x !== undefined);
      }),
    );
    if (parts.every((x) => x === undefined)) return undefined;
    const all = parts.flatMap((x) => x ?? []);
    // Oldest first across services: RFC 3339 with the same zone sorts as text; stable within a service.
    all.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
    const merged = all.map((x) => x.line);
    return q.tail !== undefined && !q.service ? merged.slice(-q.tail) : merged;
  }

  async followLogs(p: ProjectRef, q: LogQuery, onLine: (line: string) => void, signal?: AbortSignal): Promise<void> {
    const services = q.service ? [q.service] : await this.services(p);
    await Promise.all(
      services.map(async (svc) => {
        const args = ["service", "logs", "--follow", "--no-trunc", "--no-task-ids", "--timestamps", "--tail", String(q.tail ?? 50)];
        if (q.since) args.push("--since", q.since);
        args.push(`${p.project}_${svc}`);
        const child = execa("docker", args, {
          reject: false,
          stdin: "ignore",
          all: true,
          forceKillAfterDelay: 2_000,
          ...(this.config.manager ? { env: { DOCKER_HOST: this.config.manager } } : {}),
          ...(signal ? { cancelSignal: signal } : {}),
        });
        for await (const raw of child.iterable({ from: "all" })) {
          const l = serviceLogLine(String(raw), containerName(svc, p.slug), true);
          if (l) onLine(l.line);
        }
        await child;
      }),
    );
  }

  /** The node engine and container running a service's task (cached until it stops answering). */
  private async locate(p: ProjectRef, service: string): Promise<{ host: string | undefined; container: string }> {
    const key = `${p.project}/${service}`;
    const known = this.located.get(key);
    if (known) return known;
    const task = (await this.tasks(p.project)).get(service);
    if (!task || taskState(task.CurrentState) !== "running") throw new BottleError("docker", `service ${service} of ${p.project} is not running`);
    const host = this.nodeHost(task.Node);
    const id = lines(await this.on(host, ["ps", "-q", "--filter", `label=${SERVICE_LABEL}=${p.project}_${service}`], { timeout: 30_000 }))[0];
    if (!id) throw new BottleError("docker", `service ${service} of ${p.project} is not running on node ${task.Node}`);
    const where = { host, container: id };
    this.located.set(key, where);
    return where;
  }

  private async onTask<T>(p: ProjectRef, service: string, fn: (w: { host: string | undefined; container: string }) => Promise<T>): Promise<T> {
    const w = await this.locate(p, service);
    try {
      return await fn(w);
    } catch (err) {
      this.located.delete(`${p.project}/${service}`);
      throw err;
    }
  }

  async exec(p: ProjectRef, r: ExecRequest): Promise<ExecOutcome> {
    // Bare names: docker reads the values from our env, never from argv.
    const envArgs = Object.keys(r.env ?? {}).flatMap((name) => ["-e", name]);
    return this.onTask(p, r.service, (w) =>
      this.on(w.host, ["exec", ...(r.stdin !== undefined ? ["-i"] : []), ...envArgs, w.container, ...r.argv], {
        timeout: r.timeoutMs,
        reject: false,
        ...(r.env ? { env: r.env } : {}),
        ...(r.stdin !== undefined ? { input: r.stdin } : {}),
        ...(r.signal ? { signal: r.signal } : {}),
      }),
    ).catch((err: unknown) => {
      if (err instanceof BottleError && /timed out/.test(err.message)) return { exitCode: 124, stdout: "", stderr: err.message, timedOut: true };
      throw err;
    });
  }

  async execDetached(p: ProjectRef, r: DetachedRequest): Promise<void> {
    const envArgs = Object.keys(r.env ?? {}).flatMap((name) => ["-e", name]);
    await this.onTask(p, r.service, (w) => this.on(w.host, ["exec", "-d", ...(r.cwd ? ["-w", r.cwd] : []), ...envArgs, w.container, ...r.argv], { ...(r.env ? { env: r.env } : {}) }));
  }

  async signal(p: ProjectRef, service: string, sig: "HUP" | "TERM" | "KILL"): Promise<void> {
    await this.onTask(p, service, (w) => this.on(w.host, ["kill", "--signal", sig, w.container], { timeout: 15_000 }));
  }

  async list(labels: LabelFilter): Promise<{ containers: ContainerInfo[]; networks: NetworkInfo[] }> {
    const [ids, nets] = await Promise.all([
      this.m(["service", "ls", "-q", ...labelArgs(labels)], { timeout: 30_000 }).then(lines),
      this.m(["network", "ls", ...labelArgs(labels), "--format", `{{.Name}}\t{{.Label "${LABELS.slug}"}}`], { timeout: 30_000 }).then(lines),
    ]);
    const containers: ContainerInfo[] = [];
    if (ids.length) {
      const rows = lines(
        await this.m(["service", "inspect", "--format", `{{.Spec.Name}}\t{{index .Spec.Labels "${STACK_LABEL}"}}\t{{index .Spec.Labels "${LABELS.slug}"}}`, ...ids], { timeout: 30_000 }),
      );
      const byStack = new Map<string, Map<string, TaskRow>>();
      for (const row of rows) {
        const [name = "", stack = "", slug = ""] = row.split("\t");
        if (!slug || !stack) continue;
        if (!byStack.has(stack)) byStack.set(stack, await this.tasks(stack));
        const service = name.slice(stack.length + 1);
        const task = byStack.get(stack)!.get(service);
        containers.push({ name: containerName(service, slug), service, slug, state: task ? taskState(task.CurrentState) : "created" });
      }
    }
    const networks: NetworkInfo[] = [];
    for (const line of nets) {
      const [name, slug] = line.split("\t");
      if (slug && name) networks.push({ name, slug });
    }
    return { containers, networks };
  }

  async removeAll(labels: LabelFilter): Promise<{ containers: string[]; networks: string[] }> {
    const ids = lines(await this.m(["service", "ls", "-q", ...labelArgs(labels)], { timeout: 30_000 }));
    const rows = ids.length ? lines(await this.m(["service", "inspect", "--format", `{{.Spec.Name}}\t{{index .Spec.Labels "${STACK_LABEL}"}}`, ...ids], { timeout: 30_000 })) : [];
    const names = rows.map((r) => r.split("\t")[0] ?? "");
    const stacks = [...new Set(rows.map((r) => r.split("\t")[1] ?? "").filter(Boolean))];
    await this.removeStacks(stacks);
    // Secrets of stacks already gone (a crash between create and deploy) carry the bottle's labels too.
    const secrets = lines(await this.m(["secret", "ls", "-q", ...labelArgs(labels)], { reject: false, timeout: 30_000 }));
    if (secrets.length) await this.m(["secret", "rm", ...secrets], { reject: false, timeout: 30_000 });
    const nets = lines(await this.m(["network", "ls", ...labelArgs(labels), "--format", "{{.Name}}"], { timeout: 30_000 }));
    await this.removeNetworks(nets);
    return { containers: names, networks: nets };
  }
}
