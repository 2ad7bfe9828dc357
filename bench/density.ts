// Density on the real Docker engine (issue 13, item 4): N idle bottles
// (builtin firewall + egress with one credential route + agent) started B at
// a time with startBottle, then, with all of them idle:
//   - CPU of every bottle container over IDLE s, from cgroup v1 cpuacct
//     (cpuacct.usage, ns), summed: target < 10 % of one core for 100 bottles;
//   - memory per container from cgroup v1 memory.stat: `rss` (anonymous
//     memory: heaps, stacks, malloc) is what a bottle costs the host, since
//     file pages (the node binary, the bundle) are shared page cache charged
//     to whichever container touched them first; "usage - inactive_file"
//     (what `docker stats` shows) is printed beside it;
//   - the host's MemAvailable before and after, per bottle (kernel objects,
//     network namespaces, veths and the engine's own share included);
// then every bottle stopped B at a time with stopBottle. Per-sidecar medians
// say what each container costs.
//   BENCH_DENSITY_N (default 100), BENCH_DENSITY_BATCH (10),
//   BENCH_DENSITY_IDLE_S (60), BENCH_DENSITY_SETTLE_S (30: a sidecar's
//   one-off collections after start, kit/settle.ts and V8's memory reducer
//   after it, end ~10 s after it is ready; the window measures idling, not them).
// Traffic: none; the bottles only idle. Everything created is labelled with
// a slug prefix and removed at the end (also on Ctrl-C); state and subnets
// are private to the run (a temp BOTTLE_STATE_DIR, BOTTLE_SUBNET_POOL below).
import { readFileSync, rmSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { startBottle } from "../src/bottles/start.js";
import { stopBottle } from "../src/bottles/stop.js";
import { docker } from "../src/engine/run.js";
import { benchContext, removeLeftovers } from "./lifecycle.js";
import { median, percentile, printTable } from "./table.js";

const PREFIX = "bench-dn-";
const POOL = "10.218.0.0/16";
const SLUG_LABEL = "dev.bot-bottle.slug";
const SERVICE_LABEL = "com.docker.compose.service";
const CGROUP = "/sys/fs/cgroup";

const intEnv = (name: string, dflt: number): number => {
  const v = process.env[name];
  if (v === undefined || v === "") return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got "${v}"`);
  return n;
};

const MANIFEST = `version: 1
defaults:
  firewall: builtin
agents:
  density:
    image: node:24-bookworm-slim
    network:
      allow: [api.example.test]
    egress:
      routes:
        - host: api.example.test
          header: Authorization
          value: "Bearer \${DENSITY_TOKEN}"
`;

interface Container {
  id: string;
  slug: string;
  service: string;
}

interface Memory {
  /** memory.stat rss: anonymous memory. */
  rss: number;
  /** usage_in_bytes - total_inactive_file: what `docker stats` shows. */
  working: number;
}

const MiB = 1024 * 1024;
const s = (ms: number) => ms / 1000;

/** Run `fn` over `items` `size` at a time (a batch starts when the previous one has settled). */
async function inBatches<T>(items: T[], size: number, fn: (item: T) => Promise<unknown>): Promise<Array<{ item: T; ms: number; error?: unknown }>> {
  const out: Array<{ item: T; ms: number; error?: unknown }> = [];
  for (let i = 0; i < items.length; i += size) {
    const batch = items.slice(i, i + size);
    out.push(
      ...(await Promise.all(
        batch.map(async (item) => {
          const t0 = performance.now();
          try {
            await fn(item);
            return { item, ms: performance.now() - t0 };
          } catch (error) {
            return { item, ms: performance.now() - t0, error };
          }
        }),
      )),
    );
  }
  return out;
}

async function bottleContainers(): Promise<Container[]> {
  const ps = await docker(["ps", "--no-trunc", "--filter", `label=${SLUG_LABEL}`, "--format", `{{.ID}}\t{{.Label "${SLUG_LABEL}"}}\t{{.Label "${SERVICE_LABEL}"}}`], { timeout: 60_000 });
  return ps.stdout
    .split("\n")
    .map((l) => l.split("\t"))
    .filter(([id, slug]) => id && slug?.startsWith(PREFIX))
    .map(([id, slug, service]) => ({ id: id!, slug: slug!, service: service || "?" }));
}

function cpuNs(id: string): number {
  return Number(readFileSync(`${CGROUP}/cpuacct/docker/${id}/cpuacct.usage`, "utf8"));
}

function memoryOf(id: string): Memory {
  const dir = `${CGROUP}/memory/docker/${id}`;
  const stat = new Map(
    readFileSync(`${dir}/memory.stat`, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => {
        const [k, v] = l.split(" ");
        return [k!, Number(v)] as const;
      }),
  );
  const usage = Number(readFileSync(`${dir}/memory.usage_in_bytes`, "utf8"));
  return { rss: (stat.get("total_rss") ?? stat.get("rss") ?? 0) + (stat.get("total_rss_huge") ?? 0), working: usage - (stat.get("total_inactive_file") ?? 0) };
}

function memAvailable(): number {
  return Number(/MemAvailable:\s+(\d+) kB/.exec(readFileSync("/proc/meminfo", "utf8"))![1]) * 1024;
}

const fmt = (xs: number[], scale: number, digits = 1) => (xs.length ? `${(median(xs) / scale).toFixed(digits)} / ${(percentile(xs, 95) / scale).toFixed(digits)}` : "-");

export async function benchDensity(): Promise<void> {
  const N = intEnv("BENCH_DENSITY_N", 100);
  const BATCH = intEnv("BENCH_DENSITY_BATCH", 10);
  const IDLE_S = intEnv("BENCH_DENSITY_IDLE_S", 60);
  const SETTLE_S = intEnv("BENCH_DENSITY_SETTLE_S", 30);
  // The route's credential: a random stand-in, never sent anywhere (nothing makes a request).
  const { dir, manifest, env } = benchContext("density", MANIFEST, POOL, { DENSITY_TOKEN: `dt-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}` });
  const tag = (process.pid % 0xffff).toString(16).padStart(4, "0");
  const slugs = Array.from({ length: N }, (_, i) => `${PREFIX}${tag}-${i}`);
  const interrupted = () => {
    process.stderr.write(`\ninterrupted: removing ${PREFIX}* containers and networks\n`);
    void removeLeftovers(PREFIX).finally(() => process.exit(130));
  };
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);

  await removeLeftovers(PREFIX);
  // One bottle first, alone: builds the sidecar images if they are missing or stale, so batches measure starts, not builds.
  const warm = `${PREFIX}${tag}-warm`;
  await startBottle({ profile: "density", manifest, slug: warm, env, cold: true });
  await stopBottle(warm, { env });

  const memBefore = memAvailable();
  let started: Array<{ item: string; ms: number; error?: unknown }> = [];
  let stopped: Array<{ item: string; ms: number; error?: unknown }> = [];
  let startWall = 0;
  let stopWall = 0;
  let memAfter = memBefore;
  const cpuByService = new Map<string, number[]>();
  const memByService = new Map<string, Memory[]>();
  const perBottle = new Map<string, { cpu: number; rss: number; working: number }>();
  let cpuTotal = 0;
  let containers: Container[] = [];
  try {
    process.stderr.write(`density: starting ${N} bottles, ${BATCH} at a time\n`);
    const t0 = performance.now();
    started = await inBatches(slugs, BATCH, (slug) => startBottle({ profile: "density", manifest, slug, env, cold: true }));
    startWall = performance.now() - t0;
    const failed = started.filter((r) => r.error);
    for (const f of failed.slice(0, 3)) process.stderr.write(`density: ${f.item} failed: ${f.error instanceof Error ? f.error.message : String(f.error)}\n`);

    process.stderr.write(`density: ${N - failed.length} running; settling ${SETTLE_S} s, then measuring idle CPU for ${IDLE_S} s\n`);
    await new Promise((r) => setTimeout(r, SETTLE_S * 1000));
    containers = await bottleContainers();
    const cpu0 = new Map(containers.map((c) => [c.id, cpuNs(c.id)]));
    const w0 = performance.now();
    await new Promise((r) => setTimeout(r, IDLE_S * 1000));
    const wall = (performance.now() - w0) * 1e6; // ns
    memAfter = memAvailable();
    for (const c of containers) {
      let share: number;
      let mem: Memory;
      try {
        share = (cpuNs(c.id) - cpu0.get(c.id)!) / wall;
        mem = memoryOf(c.id);
      } catch {
        continue; // a container that died meanwhile shows in "containers running at the end"
      }
      cpuTotal += share;
      cpuByService.set(c.service, [...(cpuByService.get(c.service) ?? []), share]);
      memByService.set(c.service, [...(memByService.get(c.service) ?? []), mem]);
      const b = perBottle.get(c.slug) ?? { cpu: 0, rss: 0, working: 0 };
      perBottle.set(c.slug, { cpu: b.cpu + share, rss: b.rss + mem.rss, working: b.working + mem.working });
    }
  } finally {
    process.stderr.write(`density: stopping, ${BATCH} at a time\n`);
    const t1 = performance.now();
    stopped = await inBatches(
      started.filter((r) => !r.error).map((r) => r.item),
      BATCH,
      (slug) => stopBottle(slug, { env }),
    );
    stopWall = performance.now() - t1;
    process.off("SIGINT", interrupted);
    process.off("SIGTERM", interrupted);
  }
  const leftovers = await removeLeftovers(PREFIX);
  rmSync(dir, { recursive: true, force: true });

  const ok = started.filter((r) => !r.error);
  const bottles = [...perBottle.values()];
  const running = new Set(containers.map((c) => c.slug)).size;
  const perBottleRss = bottles.map((b) => b.rss);
  const perBottleWorking = bottles.map((b) => b.working);
  printTable(`Density: ${N} idle bottles (builtin firewall + egress + agent), started and stopped ${BATCH} at a time, idle ${IDLE_S} s`, [
    { metric: "bottles started / running (containers)", value: `${ok.length} / ${running} (${containers.length})`, target: `${N} / ${N}`, ok: ok.length === N && running === N ? "yes" : "NO" },
    { metric: "start: total wall s", value: s(startWall).toFixed(1), target: "", ok: "" },
    {
      metric: "start: per bottle median / p95 s",
      value: fmt(
        ok.map((r) => r.ms),
        1000,
        2,
      ),
      target: "",
      ok: "",
    },
    {
      metric: "idle CPU, all bottle containers, % of one core",
      value: (cpuTotal * 100).toFixed(2),
      target: N >= 100 ? "< 10" : `< ${(10 * N) / 100} (10 per 100)`,
      ok: cpuTotal * 100 < (10 * N) / 100 ? "yes" : "NO",
    },
    {
      metric: "idle CPU per bottle median / p95, % of a core",
      value: fmt(
        bottles.map((b) => b.cpu * 100),
        1,
        3,
      ),
      target: "",
      ok: "",
    },
    { metric: "memory per bottle (cgroup rss) median / p95 MB", value: fmt(perBottleRss, 1e6), target: "< 80", ok: perBottleRss.length && median(perBottleRss) / 1e6 < 80 ? "yes" : "NO" },
    { metric: "memory per bottle (usage - inactive file) median / p95 MB", value: fmt(perBottleWorking, 1e6), target: "", ok: "" },
    { metric: "host MemAvailable drop per bottle MB (machine-wide: noisy while others work)", value: ok.length ? ((memBefore - memAfter) / ok.length / 1e6).toFixed(1) : "-", target: "", ok: "" },
    { metric: "stop: total wall s", value: s(stopWall).toFixed(1), target: "", ok: "" },
    {
      metric: "stop: per bottle median / p95 s",
      value: fmt(
        stopped.map((r) => r.ms),
        1000,
        2,
      ),
      target: "",
      ok: "",
    },
    {
      metric: "stopped cleanly / leftovers removed",
      value: `${stopped.filter((r) => !r.error).length} / ${leftovers.containers + leftovers.networks}`,
      target: `${ok.length} / 0`,
      ok: stopped.every((r) => !r.error) && leftovers.containers + leftovers.networks === 0 ? "yes" : "NO",
    },
  ]);
  printTable(
    "Density: per container, medians (p95) over the bottles",
    [...memByService.keys()].sort().map((service) => {
      const mem = memByService.get(service)!;
      const cpu = cpuByService.get(service)!;
      return {
        container: service,
        count: mem.length,
        "rss MiB": fmt(
          mem.map((m) => m.rss),
          MiB,
        ),
        "usage - inactive file MiB": fmt(
          mem.map((m) => m.working),
          MiB,
        ),
        "idle CPU % of a core": fmt(
          cpu.map((c) => c * 100),
          1,
          3,
        ),
      };
    }),
  );
}
