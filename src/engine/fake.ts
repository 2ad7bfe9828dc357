// An engine in memory, for unit tests of the lifecycle (start, rollback,
// stop, cleanup, grants): it records every call, keeps networks, projects and
// isolation rules in maps, and can be told to fail any operation. It lives in
// src so the type checker keeps it in step with the Engine interface.
import { readFileSync, writeFileSync } from "node:fs";
import nodePath from "node:path";
import { FILES, MOUNTS } from "../contracts/mounts.js";
import { parse } from "yaml";
import { LOG_EVENTS } from "../contracts/log-line.js";
import { containerName, LABELS, type NetworkPlan, type Plan } from "../plan/index.js";
import { overlaps } from "../plan/subnets.js";
import type { ContainerInfo, DetachedRequest, Engine, EngineCheck, EngineOp, ExecOutcome, ExecRequest, IsolationSupport, LabelFilter, LogQuery, NetworkInfo, ProjectRef, UpOptions } from "./engine.js";
import { SubnetTakenError } from "./engine.js";

interface FakeProject {
  ref: ProjectRef;
  labels: Record<string, string>;
  containers: ContainerInfo[];
  logs: string[];
}

interface Failure {
  nth: number;
  seen: number;
  after: boolean;
  error: Error;
}

export class FakeEngine implements Engine {
  readonly kind = "fake" as const;
  readonly calls: Array<{ op: EngineOp; args: unknown[] }> = [];
  readonly networks = new Map<string, NetworkPlan>();
  readonly projects = new Map<string, FakeProject>();
  /** Containers that exist outside any project we brought up (orphans for cleanup tests). */
  readonly planted: Array<ContainerInfo & { labels: Record<string, string> }> = [];
  readonly isolated = new Set<string>();
  readonly signals: Array<{ project: string; service: string; sig: string }> = [];
  isolationSupport: IsolationSupport = { supported: true, reason: "fake" };
  /** Subnets of networks that are not ours. */
  takenSubnets: string[] = [];
  /** How long a network create takes in the engine (see createNetwork). */
  createLatencyMs = 0;
  /** What a service prints when signalled; the default is what our proxies print on a good reload. */
  onSignal: (service: string, sig: string) => string | undefined = (service, sig) =>
    sig === "HUP" && (service === "firewall" || service === "egress") ? JSON.stringify({ ts: new Date(0).toISOString(), mode: service, event: LOG_EVENTS.configReloaded }) : undefined;
  /** What a detached command does (tests write the files a task wrapper would); the default does nothing. */
  onExecDetached: (p: ProjectRef, r: DetachedRequest) => void | Promise<void> = () => undefined;
  /** What exec answers; the default echoes argv. */
  onExec: (p: ProjectRef, r: ExecRequest) => ExecOutcome | Promise<ExecOutcome> = (_p, r) => ({ exitCode: 0, stdout: r.argv.join(" "), stderr: "", timedOut: false });
  /** Services that start but never say they are ready (a hung sidecar). */
  readonly neverReady = new Set<string>();
  /** Services whose container exits right after it started. */
  readonly crashOnStart = new Set<string>();
  private readonly failures = new Map<EngineOp, Failure>();

  /** Make the nth call (default: the first) of `op` fail; `after` does the side effect first (a half-done `up`). */
  failOn(op: EngineOp, o: { nth?: number; after?: boolean; error?: Error } = {}): this {
    this.failures.set(op, { nth: o.nth ?? 1, seen: 0, after: o.after ?? false, error: o.error ?? new Error(`fake ${op} failed`) });
    return this;
  }

  /** Pretend containers with these labels exist (e.g. orphans of a bottle with no state dir). */
  plant(labels: Record<string, string>, services: string[], state = "running"): void {
    const slug = labels[LABELS.slug] ?? "?";
    for (const service of services) this.planted.push({ name: containerName(service, slug), service, slug, state, labels });
  }

  private async step<T>(op: EngineOp, args: unknown[], effect: () => T | Promise<T>): Promise<T> {
    this.calls.push({ op, args });
    const f = this.failures.get(op);
    if (f && ++f.seen === f.nth) {
      if (f.after) await effect();
      throw f.error;
    }
    return effect();
  }

  checks(): Promise<EngineCheck[]> {
    return this.step("checks", [], () => [{ name: "engine", ok: true, detail: "fake engine" }]);
  }

  ensureImages(plan: Plan, _onBuild: (image: string) => void): Promise<void> {
    return this.step("ensureImages", [plan.slug], () => undefined);
  }

  usedSubnets(): Promise<string[]> {
    return this.step("usedSubnets", [], () => [...this.takenSubnets, ...[...this.networks.values()].map((n) => n.subnet)]);
  }

  /**
   * With createLatencyMs, a create takes that long in the "engine", and a
   * caller that passes a signal (as the docker CLI's killer would) is told
   * "cancelled" at once while the network still appears when the engine is
   * done: what a real engine does with a create whose client went away.
   */
  createNetwork(net: NetworkPlan, signal?: AbortSignal): Promise<void> {
    const make = () => {
      const clash = [...this.takenSubnets, ...[...this.networks.values()].map((n) => n.subnet)].some((s) => overlaps(s, net.subnet));
      if (clash) throw new SubnetTakenError(`Pool overlaps with other one on this address space (${net.subnet})`);
      this.networks.set(net.name, net);
    };
    if (!this.createLatencyMs) return this.step("createNetwork", [net.name, net.subnet], make);
    const inEngine = new Promise<void>((resolve, reject) => setTimeout(() => this.step("createNetwork", [net.name, net.subnet], make).then(resolve, reject), this.createLatencyMs));
    inEngine.catch(() => {});
    if (!signal) return inEngine;
    return new Promise<void>((resolve, reject) => {
      inEngine.then(resolve, reject);
      signal.addEventListener("abort", () => reject(new Error("docker network create was cancelled")), { once: true });
    });
  }

  removeNetworks(names: readonly string[]): Promise<void> {
    return this.step("removeNetworks", [names], () => {
      for (const n of names) this.networks.delete(n);
    });
  }

  isolation(): Promise<IsolationSupport> {
    return this.step("isolation", [], () => this.isolationSupport);
  }

  isolate(bridge: string): Promise<void> {
    return this.step("isolate", [bridge], () => void this.isolated.add(bridge));
  }

  release(bridge: string): Promise<void> {
    return this.step("release", [bridge], () => void this.isolated.delete(bridge));
  }

  staleIsolation(): Promise<string[]> {
    return this.step("staleIsolation", [], () => {
      const live = new Set([...this.networks.values()].map((n) => n.bridge));
      const stale = [...this.isolated].filter((b) => !live.has(b));
      for (const b of stale) this.isolated.delete(b);
      return stale;
    });
  }

  up(p: ProjectRef, o: UpOptions): Promise<void> {
    return this.step("up", [p.project], () => {
      const compose = parse(readFileSync(p.file, "utf8")) as { services: Record<string, { labels?: Record<string, string> }> };
      const services = Object.keys(compose.services);
      const labels = compose.services[services[0]!]?.labels ?? {};
      void o;
      const readyDirs = readyDirsOf(p.file);
      const containers: ContainerInfo[] = services.map((service) => {
        const crashed = this.crashOnStart.has(service);
        // What our sidecars do once they serve: write the ready file into their own ready dir.
        const readyDir = readyDirs.get(service);
        if (readyDir && !crashed && !this.neverReady.has(service)) writeReady(readyDir, { pid: 1, reloads: 0, refused: 0 });
        return { name: containerName(service, p.slug), service, slug: p.slug, state: crashed ? "exited" : "running", ...(crashed ? { exitCode: 1 } : {}) };
      });
      this.projects.set(p.project, { ref: p, labels, containers, logs: [] });
    });
  }

  down(p: ProjectRef): Promise<void> {
    return this.step("down", [p.project], () => void this.projects.delete(p.project));
  }

  ps(p: ProjectRef): Promise<ContainerInfo[]> {
    return this.step("ps", [p.project], () => this.projects.get(p.project)?.containers ?? []);
  }

  logs(p: ProjectRef, q: LogQuery): Promise<string[] | undefined> {
    return this.step("logs", [p.project, q], () => {
      const proj = this.projects.get(p.project);
      if (!proj) return undefined;
      const lines = proj.logs.filter((l) => !q.service || l.startsWith(`${containerName(q.service, p.slug)} |`));
      return q.tail === undefined ? lines : lines.slice(-q.tail);
    });
  }

  followLogs(p: ProjectRef, q: LogQuery, onLine: (line: string) => void): Promise<void> {
    return this.step("followLogs", [p.project, q], async () => {
      for (const l of (await this.logs(p, q)) ?? []) onLine(l);
    });
  }

  exec(p: ProjectRef, r: ExecRequest): Promise<ExecOutcome> {
    return this.step("exec", [p.project, r.service, r.argv], () => this.onExec(p, r));
  }

  execDetached(p: ProjectRef, r: DetachedRequest): Promise<void> {
    return this.step("execDetached", [p.project, r.service, r.argv], () => this.onExecDetached(p, r));
  }

  signal(p: ProjectRef, service: string, sig: "HUP" | "TERM" | "KILL"): Promise<void> {
    return this.step("signal", [p.project, service, sig], () => {
      this.signals.push({ project: p.project, service, sig });
      const line = this.onSignal(service, sig);
      const project = this.projects.get(p.project);
      if (line !== undefined) project?.logs.push(`${containerName(service, p.slug)} | ${line}`);
      // Our proxies count a reload in their ready file (what reconfigure waits on). The
      // dir is found through the current compose file: a claimed pool bottle's state
      // dir was renamed, and a real bind follows the directory, not its old path.
      const dir = readyDirsOf(p.file).get(service);
      if (sig === "HUP" && dir && line !== undefined && (service === "firewall" || service === "egress")) {
        const was = JSON.parse(readFileSync(nodePath.join(dir, FILES.ready), "utf8")) as { pid: number; reloads: number; refused: number };
        const refused = line.includes(LOG_EVENTS.configReloadRefused);
        writeReady(dir, { ...was, reloads: was.reloads + (refused ? 0 : 1), refused: was.refused + (refused ? 1 : 0) });
      }
    });
  }

  list(labels: LabelFilter): Promise<{ containers: ContainerInfo[]; networks: NetworkInfo[] }> {
    return this.step("list", [labels], () => ({
      containers: this.containersWith(labels).map(({ c }) => c),
      networks: this.networksWith(labels).map((n) => ({ name: n.name, slug: n.labels[LABELS.slug] ?? "?" })),
    }));
  }

  removeAll(labels: LabelFilter): Promise<{ containers: string[]; networks: string[] }> {
    return this.step("removeAll", [labels], () => {
      const cs = this.containersWith(labels);
      const ns = this.networksWith(labels);
      for (const { c, project } of cs) {
        if (project) this.projects.delete(project);
        else this.planted.splice(this.planted.indexOf(c as (typeof this.planted)[number]), 1);
      }
      for (const n of ns) this.networks.delete(n.name);
      return { containers: cs.map(({ c }) => c.name), networks: ns.map((n) => n.name) };
    });
  }

  private containersWith(labels: LabelFilter): Array<{ c: ContainerInfo; project?: string }> {
    const match = (l: Record<string, string>) => Object.entries(labels).every(([k, v]) => l[k] === v);
    const fromProjects = [...this.projects.entries()].filter(([, p]) => match(p.labels)).flatMap(([project, p]) => p.containers.map((c) => ({ c, project })));
    return [...fromProjects, ...this.planted.filter((c) => match(c.labels)).map((c) => ({ c }))];
  }

  private networksWith(labels: LabelFilter): NetworkPlan[] {
    return [...this.networks.values()].filter((n) => Object.entries(labels).every(([k, v]) => n.labels[k] === v));
  }
}

const writeReady = (dir: string, state: object) => writeFileSync(nodePath.join(dir, FILES.ready), `${JSON.stringify(state)}\n`);

function readyDirsOf(file: string): Map<string, string> {
  const out = new Map<string, string>();
  try {
    const compose = parse(readFileSync(file, "utf8")) as { services: Record<string, { volumes?: Array<{ source: string; target: string }> }> };
    for (const [service, svc] of Object.entries(compose.services)) {
      const dir = svc.volumes?.find((v) => v.target === MOUNTS.ready)?.source;
      if (dir) out.set(service, dir);
    }
  } catch {
    // no compose file: nothing to find
  }
  return out;
}
