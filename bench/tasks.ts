// Task benchmarks on the real Docker engine (issue 12, "Benchmarks"):
//   run     - bottle_run -> task running (runTask from call to return, and to
//             the command's first output on the host; and the bottle_run tool
//             call over MCP stdio to a running server), median of 20, beside a
//             bare `docker exec -d` of the same command in the same container,
//             interleaved. Targets: < 150 ms, ratio <= 1.5.
//   read    - reading 1 MiB of new output by cursor (taskStatus with
//             output_from, the path bottle_task takes) from a 64 MiB task log
//             that a real task wrote. Target < 20 ms.
//   many    - 100 tasks across 10 bottles started at once; every output read
//             back whole by cursor and checked (byte count and sha256).
// Traffic stays on this machine: our own containers and networks only. The
// bottles are stopped and any leftovers removed by their slug prefix.
import { createHash } from "node:crypto";
import { mkdtempSync, promises as fs, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { performance } from "node:perf_hooks";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { startBottle } from "../src/bottles/start.js";
import { stopBottle } from "../src/bottles/stop.js";
import { MAX_READ_BYTES, runTask, taskStatus } from "../src/bottles/tasks.js";
import { MOUNTS } from "../src/contracts/mounts.js";
import { docker } from "../src/engine/run.js";
import { containerName } from "../src/plan/index.js";
import { layoutOf } from "../src/state/layout.js";
import { removeLeftovers } from "./lifecycle.js";
import { median, percentile, printTable } from "./table.js";

const PREFIX = "bench-tk-";
const POOL = "10.243.0.0/16";
const tag = (process.pid % 0xffff).toString(16).padStart(4, "0");
const MANIFEST = `version: 1
agents:
  bench:
    image: node:24-bookworm-slim
    network:
      allow: [allowed.test]
`;
const MiB = 1024 * 1024;
const ms = (t0: number) => performance.now() - t0;
const sleep = (n: number) => new Promise((r) => setTimeout(r, n));

async function until<T>(probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (performance.now() > end) throw new Error("timed out waiting");
    await sleep(1);
  }
}

export async function benchTasks(): Promise<void> {
  const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-bench-tasks-"));
  const manifest = nodePath.join(dir, "bottle.yaml");
  writeFileSync(manifest, MANIFEST);
  const env: NodeJS.ProcessEnv = { ...process.env, BOTTLE_STATE_DIR: nodePath.join(dir, "state"), BOTTLE_SUBNET_POOL: POOL, BOTTLE_LOG_LEVEL: process.env.BOTTLE_LOG_LEVEL ?? "warn" };
  const slugs = Array.from({ length: 10 }, (_, i) => `${PREFIX}${tag}-${i}`);
  const started: string[] = [];
  const cleanup = async () => {
    for (const slug of started) await stopBottle(slug, { env, purge: true }).catch(() => {});
    await removeLeftovers(PREFIX);
    rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = () => {
    process.stderr.write(`\ninterrupted: removing ${PREFIX}* bottles\n`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  try {
    // Ten bottles, two at a time (a 2-core machine); the first serves run and read.
    const t0 = performance.now();
    for (let i = 0; i < slugs.length; i += 2) {
      await Promise.all(
        slugs.slice(i, i + 2).map(async (slug) => {
          await startBottle({ profile: "bench", manifest, slug, env });
          started.push(slug);
        }),
      );
    }
    process.stderr.write(`[tasks] 10 bottles up in ${(ms(t0) / 1000).toFixed(1)} s\n`);
    const rows = [...(await benchRun(slugs[0]!, env)), ...(await benchRunMcp(slugs[1]!, env)), ...(await benchRead(slugs[0]!, env)), ...(await benchMany(slugs, env))];
    printTable("tasks (issue 12): bottle_run, cursor reads, many at once", rows);
  } finally {
    process.off("SIGINT", onSignal);
    await cleanup();
  }
}

type Row = Record<string, string | number>;

/** (a) runTask vs a bare `docker exec -d` of the same command, interleaved. */
async function benchRun(slug: string, env: NodeJS.ProcessEnv): Promise<Row[]> {
  const N = 20;
  const layout = layoutOf(env.BOTTLE_STATE_DIR!, slug);
  const agent = containerName("agent", slug);
  const oursReturn: number[] = [];
  const oursRunning: number[] = [];
  const bareReturn: number[] = [];
  const bareRunning: number[] = [];
  await fs.mkdir(nodePath.join(layout.taskIoDir, "bare"), { mode: 0o777 }).then(() => fs.chmod(nodePath.join(layout.taskIoDir, "bare"), 0o777));
  for (let i = -2; i < N; i++) {
    // The same command both ways: it prints one line and lingers.
    const t0 = performance.now();
    const { taskId } = await runTask(slug, ["sh", "-c", "echo started; sleep 2"], { env });
    const r0 = ms(t0);
    const out = nodePath.join(layout.taskIoDir, taskId, "out.aaaa");
    await until(async () => ((await fs.stat(out).catch(() => undefined))?.size ? true : undefined), 10_000);
    const s0 = ms(t0);

    const marker = `${MOUNTS.tasks}/bare/${i + 2}`;
    const t1 = performance.now();
    await docker(["exec", "-d", agent, "sh", "-c", `echo started > ${marker}; sleep 2`], { timeout: 60_000 });
    const r1 = ms(t1);
    const host = nodePath.join(layout.taskIoDir, "bare", String(i + 2));
    await until(async () => ((await fs.stat(host).catch(() => undefined))?.size ? true : undefined), 10_000);
    const s1 = ms(t1);
    if (i < 0) continue; // warm-up
    oursReturn.push(r0);
    oursRunning.push(s0);
    bareReturn.push(r1);
    bareRunning.push(s1);
  }
  const row = (what: string, ours: number[], bare: number[], target: string): Row => ({
    measure: what,
    n: ours.length,
    "median ms": median(ours),
    "p90 ms": percentile(ours, 90),
    "bare docker exec -d ms": median(bare),
    ratio: median(ours) / median(bare),
    target,
  });
  return [row("bottle_run returns (task id)", oursReturn, bareReturn, "< 150 ms, ratio <= 1.5"), row("bottle_run -> first output on host", oursRunning, bareRunning, "")];
}

/** (a) again as an MCP client sees it: the bottle_run tool call over stdio to a running server, beside the same bare exec. */
async function benchRunMcp(slug: string, env: NodeJS.ProcessEnv): Promise<Row[]> {
  const N = 20;
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [nodePath.resolve(import.meta.dirname, "../dist/cli.js"), "mcp"],
    env: env as Record<string, string>,
    stderr: "ignore",
  });
  const client = new Client({ name: "bench-tasks", version: "0.0.0" });
  await client.connect(transport);
  const agent = containerName("agent", slug);
  const ours: number[] = [];
  const bare: number[] = [];
  try {
    for (let i = -2; i < N; i++) {
      const t0 = performance.now();
      const r = await client.callTool({ name: "bottle_run", arguments: { slug, argv: ["sh", "-c", "echo started; sleep 2"] } });
      const r0 = ms(t0);
      if (r.isError) throw new Error(`bottle_run: ${JSON.stringify(r.content)}`);
      const t1 = performance.now();
      await docker(["exec", "-d", agent, "sh", "-c", "echo started > /dev/null; sleep 2"], { timeout: 60_000 });
      const r1 = ms(t1);
      if (i < 0) continue;
      ours.push(r0);
      bare.push(r1);
    }
  } finally {
    await client.close();
  }
  return [
    {
      measure: "bottle_run over MCP stdio returns (task id)",
      n: ours.length,
      "median ms": median(ours),
      "p90 ms": percentile(ours, 90),
      "bare docker exec -d ms": median(bare),
      ratio: median(ours) / median(bare),
      target: "< 150 ms, ratio <= 1.5",
    },
  ];
}

/** (b) 1 MiB of new output by cursor from a 64 MiB log a real task wrote. */
async function benchRead(slug: string, env: NodeJS.ProcessEnv): Promise<Row[]> {
  const total = 64 * MiB;
  // 64 MiB of text lines, then the task ends.
  const { taskId } = await runTask(slug, ["sh", "-c", `yes 'a line of task output, 0123456789abcdef' | head -c ${total}`], { env });
  const t0 = performance.now();
  const done = await taskStatus(slug, { env, taskId, waitS: 300, maxBytes: 1 });
  const writeS = ms(t0) / 1000;
  const info = done.tasks[0]!;
  if (info.outputBytes !== total || info.outputCut !== 0) throw new Error(`expected ${total} bytes kept, got ${info.outputBytes} (${info.outputCut} cut)`);
  const atEnd: number[] = [];
  const anywhere: number[] = [];
  const N = 50;
  for (let i = 0; i < 2 * N + 4; i++) {
    // New output at the end (what a client polling by cursor reads), and cursors all over the log (every segment).
    const end = i % 2 === 1;
    const from = end ? total - MiB : Math.floor(((i * 7919) % 63) * MiB + (i % 5) * 1000);
    const t1 = performance.now();
    const r = await taskStatus(slug, { env, taskId, from, maxBytes: MiB });
    const t = ms(t1);
    if (r.output!.next - r.output!.from !== MiB) throw new Error(`read ${r.output!.next - r.output!.from} bytes at ${from}`);
    if (i >= 4) (end ? atEnd : anywhere).push(t);
  }
  const row = (what: string, times: number[]): Row => ({
    measure: what,
    n: times.length,
    "median ms": median(times),
    "p90 ms": percentile(times, 90),
    "bare docker exec -d ms": "",
    ratio: "",
    target: "< 20 ms",
  });
  return [row(`read the newest 1 MiB by cursor, 64 MiB task log (written in ${writeS.toFixed(1)} s)`, atEnd), row("read 1 MiB by cursor anywhere in the same log", anywhere)];
}

/** (c) 100 tasks across 10 bottles at once, every output complete and right. */
async function benchMany(slugs: string[], env: NodeJS.ProcessEnv): Promise<Row[]> {
  const PER = 10;
  const jobs = slugs.flatMap((slug, b) =>
    Array.from({ length: PER }, (_, k) => {
      const n = b * PER + k;
      // Distinct output per task: a numbered line repeated to 100-200 KiB, written in bursts.
      const bytes = 100 * 1024 + n * 1024;
      return { slug, n, bytes, expect: expected(n, bytes) };
    }),
  );
  const t0 = performance.now();
  const runs = await Promise.all(
    jobs.map((j) => runTask(j.slug, ["sh", "-c", `yes 'task ${j.n} output line' | head -c ${j.bytes}; sleep 0.5; echo end-${j.n}`], { env }).then((r) => ({ ...j, id: r.taskId }))),
  );
  const startedMs = ms(t0);
  let bad = 0;
  await Promise.all(
    runs.map(async (j) => {
      const r = await taskStatus(j.slug, { env, taskId: j.id, waitS: 300, maxBytes: 1 });
      if (r.tasks[0]!.state !== "exited") bad++;
      // Read it all back by cursor, as a client would.
      const parts: Buffer[] = [];
      let from = 0;
      for (;;) {
        const c = await taskStatus(j.slug, { env, taskId: j.id, from, maxBytes: MAX_READ_BYTES });
        parts.push(Buffer.from(c.output!.text));
        from = c.output!.next;
        if (c.output!.complete) break;
      }
      const got = Buffer.concat(parts);
      if (got.length !== j.expect.length || sha(got) !== sha(j.expect)) bad++;
    }),
  );
  const totalMs = ms(t0);
  if (bad) throw new Error(`${bad} of ${runs.length} tasks did not end right or their output differs`);
  // The same 100 commands as bare `docker exec -d`s, all at once: what starting them costs without tasks.
  const t1 = performance.now();
  await Promise.all(
    jobs.map((j) => docker(["exec", "-d", containerName("agent", j.slug), "sh", "-c", `yes 'task ${j.n} output line' | head -c ${j.bytes} > /dev/null; sleep 0.5`], { timeout: 120_000 })),
  );
  const bareMs = ms(t1);
  const bytes = jobs.reduce((n, j) => n + j.expect.length, 0);
  return [
    {
      measure: `100 tasks in 10 bottles: all started (${runs.length})`,
      n: 1,
      "median ms": startedMs,
      "p90 ms": "",
      "bare docker exec -d ms": bareMs,
      ratio: startedMs / bareMs,
      target: "",
    },
    {
      measure: `... all ended, ${(bytes / MiB).toFixed(1)} MiB read back, counts and sha256 match`,
      n: 1,
      "median ms": totalMs,
      "p90 ms": "",
      "bare docker exec -d ms": "",
      ratio: "",
      target: "all complete",
    },
  ];
}

function expected(n: number, bytes: number): Buffer {
  const line = `task ${n} output line\n`;
  const body = Buffer.from(line.repeat(Math.ceil(bytes / line.length))).subarray(0, bytes);
  return Buffer.concat([body, Buffer.from(`end-${n}\n`)]);
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
