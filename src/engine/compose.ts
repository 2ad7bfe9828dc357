// The Docker Compose engine: one bottle = one compose project on the local
// (or DOCKER_HOST) engine, networks created by us with explicit subnets,
// host isolation with iptables. Everything compose- or docker-specific lives
// here and in its helpers (run, networks, images, host-isolation, features).
import { promises as fs } from "node:fs";
import { stripVTControlCharacters } from "node:util";
import { BottleError } from "../errors.js";
import { containerName, LABELS, type NetworkPlan, type Plan } from "../plan/index.js";
import type { ContainerInfo, DetachedRequest, Engine, EngineCheck, ExecOutcome, ExecRequest, IsolationSupport, LabelFilter, LogQuery, NetworkInfo, ProjectRef, UpOptions } from "./engine.js";
import { SubnetTakenError } from "./engine.js";
import { hostIsolationSupport, isolateBridge, isolatedBridges, releaseBridge } from "./host-isolation.js";
import { ensureImages } from "./images.js";
import { createNetwork, removeNetwork, usedSubnets } from "./networks.js";
import { docker, dockerLines, type RunOptions, type RunResult } from "./run.js";

export interface ComposeProject {
  project: string;
  file: string;
}

export function compose(p: ComposeProject, args: string[], o: RunOptions = {}): Promise<RunResult> {
  return docker(["compose", "-p", p.project, "-f", p.file, ...args], o);
}

export const composeConfig = (p: ComposeProject, o: RunOptions = {}) => compose(p, ["config", "--quiet"], o);
/** `up -d`: every service created and started (in depends_on order); no waiting on health. */
export const composeUp = (p: ComposeProject, o: RunOptions = {}) => compose(p, ["up", "-d", "--no-build", "--pull", "never"], { timeout: 300_000, ...o });
/** `create`: every container made, none started (compose's only slow part is its own start-up, paid once here). */
export const composeCreate = (p: ComposeProject, o: RunOptions = {}) => compose(p, ["create", "--no-build", "--pull", "never"], { timeout: 300_000, ...o });
export const composeDown = (p: ComposeProject, o: RunOptions = {}) => compose(p, ["down", "--remove-orphans", "--timeout", "5"], { timeout: 120_000, ...o });

/** Compose 2.26 prefixes every line with ESC[2K even into a pipe; drop all escapes (and carriage returns). */
export const cleanLogText = (s: string) => stripVTControlCharacters(s).replaceAll("\r", "");

interface PsEntry {
  Service?: string;
  Name?: string;
  State?: string;
  Health?: string;
  ExitCode?: number;
}

/** `compose ps --format json`: a JSON array in some compose versions, JSON lines in others. */
export function parsePs(stdout: string): PsEntry[] {
  const text = stdout.trim();
  if (!text) return [];
  if (text.startsWith("[")) return JSON.parse(text) as PsEntry[];
  return text.split("\n").flatMap((l) => {
    try {
      return [JSON.parse(l) as PsEntry];
    } catch {
      return [];
    }
  });
}

const labelArgs = (labels: LabelFilter) => Object.entries(labels).flatMap(([k, v]) => ["--filter", `label=${k}=${v}`]);

export class ComposeEngine implements Engine {
  readonly kind = "compose" as const;

  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

  async checks(): Promise<EngineCheck[]> {
    return Promise.all([checkDocker(this.env), checkCompose()]);
  }

  ensureImages(plan: Plan, onBuild: (image: string) => void, signal?: AbortSignal): Promise<void> {
    return ensureImages(plan, onBuild, signal);
  }

  usedSubnets(signal?: AbortSignal): Promise<string[]> {
    return usedSubnets(signal);
  }

  async createNetwork(net: NetworkPlan): Promise<void> {
    try {
      await createNetwork(net);
    } catch (err) {
      if (err instanceof Error && /overlap|Pool overlaps|address already in use/i.test(err.message)) throw new SubnetTakenError(err.message);
      throw err;
    }
  }

  removeNetworks(names: readonly string[]): Promise<void> {
    return removeNetwork(...names);
  }

  isolation(): Promise<IsolationSupport> {
    return hostIsolationSupport(this.env);
  }

  isolate(bridge: string): Promise<void> {
    return isolateBridge(bridge);
  }

  release(bridge: string): Promise<void> {
    return releaseBridge(bridge);
  }

  async staleIsolation(): Promise<string[]> {
    const stale: string[] = [];
    for (const bridge of await isolatedBridges()) {
      const exists = await fs.stat(`/sys/class/net/${bridge}`).then(
        () => true,
        () => false,
      );
      if (!exists) {
        await releaseBridge(bridge);
        stale.push(bridge);
      }
    }
    return stale;
  }

  async up(p: ProjectRef, o: UpOptions): Promise<void> {
    const signal = o.signal ? { signal: o.signal } : {};
    // Secrets reach compose only through this subprocess's environment.
    await composeCreate(p, { env: o.env, ...signal });
    // Then every container at once, one `docker start` each: `compose up`
    // starts them one after the other in depends_on order and costs its
    // own start-up again. Order does not matter here: the agent's PID 1 runs
    // nothing of its own, and the caller waits for each sidecar's readiness.
    const names = o.containers?.length
      ? o.containers
      : (await docker(["ps", "-a", "--filter", `label=com.docker.compose.project=${p.project}`, "--format", "{{.Names}}"], { timeout: 30_000, ...signal })).stdout.split("\n").filter(Boolean);
    await Promise.all(names.map((name) => docker(["start", name], { timeout: 120_000, ...signal })));
  }

  async down(p: ProjectRef): Promise<void> {
    // `docker rm -f` of the project's containers, not `compose down`: the
    // compose CLI costs a few hundred ms of its own, and the graceful stop
    // buys nothing here (stop has recorded the tasks and kept the logs
    // first; our networks are external, so there is nothing else to remove).
    const ids = (await docker(["ps", "-aq", "--filter", `label=com.docker.compose.project=${p.project}`], { timeout: 30_000 })).stdout.split("\n").filter(Boolean);
    if (ids.length) await docker(["rm", "-f", "-v", ...ids], { timeout: 120_000 });
  }

  async ps(p: ProjectRef): Promise<ContainerInfo[]> {
    const r = await compose(p, ["ps", "-a", "--format", "json"], { timeout: 30_000, reject: false });
    if (r.exitCode !== 0) return [];
    return parsePs(r.stdout)
      .filter((e) => e.Service)
      .map((e) => ({
        name: e.Name ?? containerName(e.Service!, p.slug),
        service: e.Service!,
        slug: p.slug,
        state: e.State ?? "unknown",
        ...(e.Health ? { health: e.Health } : {}),
        ...(e.ExitCode !== undefined ? { exitCode: e.ExitCode } : {}),
      }));
  }

  async logs(p: ProjectRef, q: LogQuery, signal?: AbortSignal): Promise<string[] | undefined> {
    const args = ["logs", "--no-color"];
    if (q.timestamps) args.push("--timestamps");
    if (q.tail !== undefined) args.push("--tail", String(q.tail));
    if (q.since) args.push("--since", q.since);
    if (q.service) args.push(q.service);
    const r = await compose(p, args, { timeout: q.tail === undefined ? 120_000 : 60_000, reject: false, ...(signal ? { signal } : {}) });
    if (r.exitCode !== 0) return undefined;
    return cleanLogText(r.stdout)
      .split("\n")
      .filter((l) => l !== "");
  }

  async followLogs(p: ProjectRef, q: LogQuery, onLine: (line: string) => void, signal?: AbortSignal): Promise<void> {
    const args = ["compose", "-p", p.project, "-f", p.file, "logs", "--no-color", "--timestamps", "--follow", "--tail", String(q.tail ?? 50)];
    if (q.since) args.push("--since", q.since);
    if (q.service) args.push(q.service);
    await dockerLines(args, (raw) => onLine(cleanLogText(raw)), signal);
  }

  async exec(p: ProjectRef, r: ExecRequest): Promise<ExecOutcome> {
    // Bare names: docker reads the values from our env, never from argv.
    const envArgs = Object.keys(r.env ?? {}).flatMap((name) => ["-e", name]);
    // `docker exec` on the container by name, not `compose exec`: the compose
    // CLI parses the project first, a few hundred ms on every call.
    return docker(["exec", ...(r.stdin !== undefined ? ["-i"] : []), ...envArgs, containerName(r.service, p.slug), ...r.argv], {
      timeout: r.timeoutMs,
      reject: false,
      ...(r.env ? { env: r.env } : {}),
      ...(r.stdin !== undefined ? { input: r.stdin } : {}),
      ...(r.signal ? { signal: r.signal } : {}),
    }).catch((err: unknown) => {
      if (err instanceof BottleError && /timed out/.test(err.message)) return { exitCode: 124, stdout: "", stderr: err.message, timedOut: true };
      throw err;
    });
  }

  async execDetached(p: ProjectRef, r: DetachedRequest): Promise<void> {
    // `docker exec -d` on the container by name, not `compose exec -d`: the
    // compose CLI parses the project first, which costs a few hundred ms on
    // every run. Bare env names: docker reads the values from our env.
    const envArgs = Object.keys(r.env ?? {}).flatMap((name) => ["-e", name]);
    await docker(["exec", "-d", ...(r.cwd ? ["-w", r.cwd] : []), ...envArgs, containerName(r.service, p.slug), ...r.argv], { timeout: 60_000, ...(r.env ? { env: r.env } : {}) });
  }

  async signal(p: ProjectRef, service: string, sig: "HUP" | "TERM" | "KILL"): Promise<void> {
    await docker(["kill", "--signal", sig, containerName(service, p.slug)], { timeout: 15_000 });
  }

  async list(labels: LabelFilter): Promise<{ containers: ContainerInfo[]; networks: NetworkInfo[] }> {
    const [ps, nets] = await Promise.all([
      docker(["ps", "-a", ...labelArgs(labels), "--format", "{{json .}}"], { timeout: 30_000 }),
      docker(["network", "ls", ...labelArgs(labels), "--format", `{{.Name}}\t{{.Label "${LABELS.slug}"}}`], { timeout: 30_000 }),
    ]);
    const containers: ContainerInfo[] = [];
    for (const line of ps.stdout.split("\n").filter(Boolean)) {
      const c = JSON.parse(line) as { Names: string; Labels: string; State: string; Status: string };
      const l = Object.fromEntries(c.Labels.split(",").map((kv) => kv.split("=") as [string, string]));
      const slug = l[LABELS.slug];
      if (!slug) continue;
      const health = /\((healthy|unhealthy|health: starting)\)/.exec(c.Status)?.[1];
      containers.push({ name: c.Names, service: l["com.docker.compose.service"] ?? "?", slug, state: c.State, ...(health ? { health } : {}) });
    }
    const networks: NetworkInfo[] = [];
    for (const line of nets.stdout.split("\n").filter(Boolean)) {
      const [name, slug] = line.split("\t");
      if (slug && name) networks.push({ name, slug });
    }
    return { containers, networks };
  }

  async removeAll(labels: LabelFilter): Promise<{ containers: string[]; networks: string[] }> {
    const [ids, nets] = await Promise.all([
      docker(["ps", "-aq", ...labelArgs(labels)], { timeout: 30_000 }).then((r) => r.stdout.split("\n").filter(Boolean)),
      docker(["network", "ls", ...labelArgs(labels), "--format", "{{.Name}}"], { timeout: 30_000 }).then((r) => r.stdout.split("\n").filter(Boolean)),
    ]);
    if (ids.length) await docker(["rm", "-f", "-v", ...ids], { timeout: 120_000 });
    await removeNetwork(...nets);
    return { containers: ids, networks: nets };
  }
}

async function checkDocker(env: NodeJS.ProcessEnv): Promise<EngineCheck> {
  try {
    const r = await docker(["version", "--format", "{{.Server.Version}}"], { timeout: 15_000, reject: false });
    if (r.exitCode === 0 && r.stdout.trim()) return { name: "docker", ok: true, detail: `Docker engine ${r.stdout.trim()} reachable${env.DOCKER_HOST ? ` at ${env.DOCKER_HOST}` : ""}` };
    return {
      name: "docker",
      ok: false,
      detail: `Docker engine unreachable: ${r.stderr.trim().split("\n").pop() ?? "no answer"}`,
      fix: "Start Docker (Docker Desktop, or `sudo systemctl start docker`), check `docker info`, DOCKER_HOST and `docker context ls`.",
    };
  } catch (err) {
    return { name: "docker", ok: false, detail: (err as Error).message, fix: "Install Docker Engine or Docker Desktop." };
  }
}

async function checkCompose(): Promise<EngineCheck> {
  try {
    const r = await docker(["compose", "version", "--short"], { timeout: 15_000, reject: false });
    const v = r.stdout.trim().replace(/^v/, "");
    if (r.exitCode === 0 && Number(v.split(".")[0]) >= 2) return { name: "compose", ok: true, detail: `Docker Compose ${v}` };
    return {
      name: "compose",
      ok: false,
      detail: r.exitCode === 0 ? `Docker Compose ${v} is not v2` : "the `docker compose` plugin is missing",
      fix: "Install the Compose v2 plugin (package docker-compose-plugin, or Docker Desktop).",
    };
  } catch (err) {
    return { name: "compose", ok: false, detail: (err as Error).message, fix: "Install Docker with the Compose v2 plugin." };
  }
}
