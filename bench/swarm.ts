// `npm run bench -- swarm` (issue 14): bottles on a three-node Docker Swarm
// made of Docker-in-Docker nodes (test/helpers/swarm.ts), beside the compose
// engine on this machine.
//   start  - startBottle of a firewall + egress + agent bottle (ready for
//            exec), swarm vs compose, interleaved; median and ratio.
//   spread - BENCH_SWARM_BOTTLES bottles (default 30) started 6 at a time
//            with agents placed by the scheduler (shared state root): agents
//            per node, total start time, memory per node (the node's cgroup
//            on this machine), then stopped.
// Traffic stays on this machine; the swarm and its nodes are removed at the end.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { performance } from "node:perf_hooks";
import { startBottle } from "../src/bottles/start.js";
import { stopBottle } from "../src/bottles/stop.js";
import { startSwarm } from "../test/helpers/swarm.js";
import { median, printTable } from "./table.js";

const MANIFEST = `version: 1
agents:
  bench:
    image: node:24-bookworm-slim
    network: { allow: [allowed.test] }
    resources: { memory: 256m, cpus: 0.1 }
    egress:
      routes:
        - { host: api.bench.test, header: Authorization, value: "Bearer \${BENCH_TOKEN}" }
`;
const ROUNDS = 5;
const tag = (process.pid % 0xffff).toString(16).padStart(4, "0");

const secs = (t0: number) => Math.round(performance.now() - t0) / 1000;

async function inBatches<T>(items: readonly T[], size: number, fn: (x: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

/** Memory charged to a node's inner containers: their cgroup parent is /<node name> of this machine's v1 hierarchy. */
function nodeMemoryMiB(node: string): number {
  try {
    return Math.round(Number(readFileSync(`/sys/fs/cgroup/memory/${node}/memory.usage_in_bytes`, "utf8")) / 2 ** 20);
  } catch {
    return Number.NaN;
  }
}

export async function benchSwarm(): Promise<void> {
  const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-bench-swarm-"));
  const manifest = nodePath.join(dir, "bottle.yaml");
  writeFileSync(manifest, MANIFEST);
  const t0 = performance.now();
  const swarm = await startSwarm({ sharedDirs: [dir] });
  const setup = secs(t0);
  const base = { ...process.env, BENCH_TOKEN: "bench-token", BOTTLE_STATE_DIR: nodePath.join(dir, "state") };
  const composeEnv = { ...base, BOTTLE_SUBNET_POOL: "10.218.0.0/16" };
  const swarmEnv = { ...base, BOTTLE_ENGINE: "swarm", BOTTLE_SWARM_MANAGER: swarm.manager.host, BOTTLE_SWARM_NODES: swarm.nodesEnv, BOTTLE_SUBNET_POOL: "10.96.0.0/16" };
  const spreadEnv = { ...swarmEnv, BOTTLE_SWARM_SHARED_STATE: "1", BOTTLE_SWARM_ENCRYPT: "0" };
  try {
    // Warm-up on each engine (image builds and copies) is not counted.
    for (const [env, slug] of [
      [composeEnv, `bsw-c-${tag}-w`],
      [spreadEnv, `bsw-s-${tag}-w`],
    ] as const) {
      await startBottle({ profile: "bench", manifest, slug, env, cold: true });
      await stopBottle(slug, { env, purge: true });
    }
    const times: Record<"compose" | "swarm", number[]> = { compose: [], swarm: [] };
    const stops: Record<"compose" | "swarm", number[]> = { compose: [], swarm: [] };
    for (let i = 0; i < ROUNDS; i++) {
      for (const [kind, env] of [
        ["compose", composeEnv],
        ["swarm", swarmEnv],
      ] as const) {
        const slug = `bsw-${kind[0]}-${tag}-${i}`;
        let t = performance.now();
        await startBottle({ profile: "bench", manifest, slug, env, cold: true });
        times[kind].push(secs(t));
        t = performance.now();
        await stopBottle(slug, { env, purge: true });
        stops[kind].push(secs(t));
      }
    }
    printTable("bottle start and stop: swarm (3 DinD nodes) vs compose (this engine)", [
      { engine: "compose", "start p50 (s)": median(times.compose), "stop p50 (s)": median(stops.compose), rounds: ROUNDS },
      { engine: "swarm", "start p50 (s)": median(times.swarm), "stop p50 (s)": median(stops.swarm), rounds: ROUNDS },
      {
        engine: "ratio swarm/compose",
        "start p50 (s)": Math.round((median(times.swarm) / median(times.compose)) * 100) / 100,
        "stop p50 (s)": Math.round((median(stops.swarm) / median(stops.compose)) * 100) / 100,
        rounds: ROUNDS,
      },
    ]);

    const count = Number(process.env.BENCH_SWARM_BOTTLES ?? 30);
    const slugs = Array.from({ length: count }, (_, i) => `bsw-p-${tag}-${i}`);
    const before = Object.fromEntries(swarm.nodes.map((n) => [n.name, nodeMemoryMiB(n.name)]));
    let t = performance.now();
    await inBatches(slugs, 6, (slug) => startBottle({ profile: "bench", manifest, slug, env: spreadEnv, cold: true }));
    const startAll = secs(t);
    const placed = (await swarm.on(swarm.manager, ["service", "ps", "--filter", "desired-state=running", "--format", "{{.Name}}\t{{.Node}}", ...slugs.map((s) => `bottle-${s}_agent`)])).stdout
      .split("\n")
      .filter(Boolean);
    const perNode = new Map<string, number>();
    for (const row of placed) perNode.set(row.split("\t")[1]!, (perNode.get(row.split("\t")[1]!) ?? 0) + 1);
    const after = Object.fromEntries(swarm.nodes.map((n) => [n.name, nodeMemoryMiB(n.name)]));
    t = performance.now();
    await inBatches(slugs, 6, (slug) => stopBottle(slug, { env: spreadEnv, purge: true }));
    const stopAll = secs(t);
    printTable(`${count} bottles on 3 nodes (sidecars on the manager, agents by the scheduler): start ${startAll} s, stop ${stopAll} s`, [
      ...swarm.nodes.map((n) => ({ node: n.name, role: n.role, agents: perNode.get(n.name) ?? 0, "memory before (MiB)": before[n.name]!, "memory running (MiB)": after[n.name]! })),
    ]);
    printTable("swarm setup", [{ "3 nodes + swarm (s)": setup, ...Object.fromEntries(Object.entries(swarm.timings).map(([k, v]) => [`${k} (s)`, v])) }]);
  } finally {
    await swarm.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
