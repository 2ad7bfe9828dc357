// Tasks: a command that runs detached in the agent container for minutes or
// hours while the orchestrator does other things, looks in on it and
// collects the result.
//
// Why files and not a pipe: the host never holds anything open. The command
// runs under a small POSIX sh wrapper started with `docker exec -d`; the
// wrapper writes everything a reader needs into the task's dir on the
// task-io bind mount (output segments, the process group id, the exit
// code, an end marker), and the host keeps its own record (what was asked,
// cancel requests, how it ended) in the state dir where the agent cannot
// write. So a task survives the MCP server's restart or a crash of the
// process that started it, and any number of readers read at once without
// a lock: nobody waits on anybody.
//
// Every file in the task dir is agent-written data: opened without following
// symlinks, parsed strictly, never deleted or written by the host after the
// start. The agent can lie about its own task's output or exit code; it
// cannot make the host read or touch anything else.
//
// Output is bounded: `split` cuts it into SEGMENT_BYTES files (out.aaaa,
// out.aaab, ...) and the wrapper's monitor loop deletes all but the newest
// KEEP_SEGMENTS, so at most OUTPUT_LIMIT bytes are kept and the oldest are
// cut. The cursor is a byte offset into the whole stream; a read from a cut
// offset says how many bytes it skipped.
import { randomBytes } from "node:crypto";
import { constants, promises as fs } from "node:fs";
import nodePath from "node:path";
import { z } from "zod";
import { MOUNTS } from "../contracts/mounts.js";
import { quote } from "../contracts/escape.js";
import { BottleError } from "../errors.js";
import { ENV_NAME_RE } from "../manifest/index.js";
import { writeFileAtomic } from "../state/atomic.js";
import { type BottleLayout, layoutOf, taskCancelFile, taskIoDirOf, taskIoFile, taskRecordFile, taskStagingDir } from "../state/layout.js";
import { knownSlugs, requireBottle } from "../state/lookup.js";
import type { Metadata } from "../state/metadata.js";
import { contextOf, projectOf, withEngine, type Ctx, type CtxInput } from "./context.js";
import { requireSpawnable } from "./exec.js";
import { openBottle } from "./handle.js";
import { KILL_BY_ENV_FN } from "./kill-by-env.js";

export const SEGMENT_BYTES = 8 * 1024 * 1024;
export const KEEP_SEGMENTS = 8;
export const OUTPUT_LIMIT = SEGMENT_BYTES * KEEP_SEGMENTS;
export const MAX_TASK_TIMEOUT_S = 30 * 86_400;
export const MAX_WAIT_S = 3600;
export const MAX_READ_BYTES = 4 * 1024 * 1024;
export const DEFAULT_READ_BYTES = 256 * 1024;
export const MAX_GRACE_S = 300;
const MiB = 1024 * 1024;
/** A bottle's task-io dir may hold this much before bottle_run refuses: 32 tasks' full output. */
export const DEFAULT_TASK_DISK_LIMIT = 2048 * MiB;
/** The disk count walks at most this many entries (an agent can make millions of empty files). */
export const MAX_DISK_ENTRIES = 100_000;
const POLL_MS = 100;
/** How often a wait asks the engine whether the agent container still runs. */
const LIVENESS_MS = 5_000;

export const TASK_STATES = ["running", "exited", "failed", "cancelled", "timed_out", "lost"] as const;
export type TaskState = (typeof TASK_STATES)[number];

const TASK_ID_RE = /^t[a-z0-9]{1,20}-[a-f0-9]{6}$/;
const SEGMENT_RE = /^out\.([a-z]{4})$/;

/** Each time the monitor sees output grow it appends a mark to this file in the task dir: `<unix time>.<ns> <segment> <bytes>`. */
export const MARKS_FILE = "times";
/** Marks the wrapper writes at most (about 4 MB); later output is timed only by the task's end. */
export const MAX_MARKS = 100_000;
/** How often (in seconds) the monitor looks for new output while the task is chatty; 1 s after 5 s of quiet. */
export const MARK_TICK_S = 0.2;

/** The env name every task's command (and so everything it starts) carries, set to its task id. */
export const TASK_ENV = "BOTTLE_TASK_ID";

/**
 * Shell that signals a task's whole tree: `ktree SIG PGID ID`. First the
 * process group the command leads; then every process still carrying
 * `BOTTLE_TASK_ID=ID` (kill-by-env.ts: a daemonised child left the group but
 * not the env). The wrapper and its monitor do not carry it, so they survive
 * to record the end.
 */
export const KILL_TREE = `${KILL_BY_ENV_FN}ktree() {
  kill -$1 "-$2" 2>/dev/null
  kenv $1 "${TASK_ENV}=$3"
}
`;

/**
 * The wrapper, run as `sh -c WRAPPER bottle-task DIR TIMEOUT_S SEGMENT KEEP argv...`.
 * - The command runs under `setsid` in a pipeline element (never a group
 *   leader, so setsid does not fork): its process group is its own, and its
 *   id is written to `pid` before the command is exec'd. Cancel and timeout
 *   signal that group; the wrapper, outside it, survives to write `code`
 *   and `end`.
 * - stdout and stderr go through `split` into bounded segments.
 * - The monitor (also outside the group) trims old segments and enforces
 *   the timeout: TERM to the group, KILL 2 s later. It also times the
 *   output (for bottle_logs' task view): when the newest segment changed
 *   since its last look ("-nt" a "tick" file it touches first, so a write
 *   during the look is seen next time), it appends the segment's size and
 *   then the time to MARKS_FILE. A mark says "these many bytes existed by
 *   this time"; the mark before says the bytes after it came later. It looks
 *   every MARK_TICK_S while output flows and once a second after 5 s of
 *   quiet, so an idle task costs one "sleep" a second as before, and the
 *   output path itself is untouched (no per-line stamping).
 *   The timeout counts ticks in fifths of a second.
 * - `end` is written last, after the output pipe closed: a reader that sees
 *   it has all the output there will ever be.
 * Portable to dash and busybox sh (their `kill` takes no `--`); a `sleep`
 * without fractions falls back to whole seconds.
 */
export const WRAPPER = `d=$1; to=$2; seg=$3; keep=$4; shift 4
${KILL_TREE}(
  n=0; q=0; m=0; t5=$((to*5))
  while :; do
    set -- "$d"/out.????
    while [ $# -gt "$keep" ]; do rm -f "$1"; shift; done
    [ -e "$d/end" ] && exit 0
    eval "l=\\\${$#}"
    if [ "$m" -lt ${MAX_MARKS} ] && [ -f "$l" ] && { [ ! -e "$d/tick" ] || [ "$l" -nt "$d/tick" ]; }; then
      : > "$d/tick"
      s=$(wc -c < "$l")
      echo "$(date -u +%s.%N) \${l##*/} $s" >> "$d/${MARKS_FILE}"
      m=$((m+1)); q=0
    fi
    if [ "$to" -gt 0 ] && [ "$n" -ge "$t5" ] && [ ! -e "$d/timed_out" ] && [ -s "$d/pid" ]; then
      : > "$d/timed_out"
      p=$(cat "$d/pid")
      ktree TERM "$p" "\${d##*/}"
      (sleep 2; ktree KILL "$p" "\${d##*/}") &
    fi
    if [ "$q" -lt 25 ] && [ "$m" -lt ${MAX_MARKS / 2} ] && sleep ${MARK_TICK_S} 2>/dev/null; then
      q=$((q+1)); n=$((n+1))
    else
      sleep 1; n=$((n+5))
    fi
  done
) </dev/null >/dev/null 2>&1 &
in=/dev/null
[ -e "$d/stdin" ] && in="$d/stdin"
{ setsid sh -c 'echo $$ > "$0/pid.tmp" && mv "$0/pid.tmp" "$0/pid" && ${TASK_ENV}=\${0##*/} && export ${TASK_ENV} && exec "$@"' "$d" "$@" < "$in"; echo $? > "$d/code.tmp"; mv "$d/code.tmp" "$d/code"; } 2>&1 | split -a 4 -b "$seg" - "$d/out."
: > "$d/end"
`;

const recordSchema = z.object({
  id: z.string(),
  slug: z.string(),
  argv: z.array(z.string()),
  envNames: z.array(z.string()),
  cwd: z.string().optional(),
  timeoutS: z.number().optional(),
  startedAt: z.string(),
  segmentBytes: z.number().int().positive(),
  end: z.object({ state: z.enum(TASK_STATES), endedAt: z.string(), exitCode: z.number().int().optional(), reason: z.string().optional() }).optional(),
});
type TaskRecord = z.output<typeof recordSchema>;

/** One task as bottle_task / bottle_cancel / bottle_run report it. */
export const taskInfoSchema = z.object({
  taskId: z.string(),
  slug: z.string(),
  state: z
    .enum(TASK_STATES)
    .describe(
      "exited: exit code 0; failed: another exit code, or it could not start; timed_out: its timeout_s ran out; cancelled: bottle_cancel or the bottle was stopped; lost: the agent container went away.",
    ),
  argv: z.array(z.string()),
  exitCode: z.number().int().optional(),
  startedAt: z.string(),
  endedAt: z.string().optional(),
  reason: z.string().optional(),
  outputBytes: z.number().int().describe("Bytes of output so far (the whole stream, cut bytes included)."),
  outputCut: z.number().int().describe(`Bytes cut from the start to keep at most ${OUTPUT_LIMIT} (oldest first).`),
});
export type TaskInfo = z.output<typeof taskInfoSchema>;

export const taskOutputChunkSchema = z.object({
  from: z.number().int().describe("Byte offset this text starts at."),
  next: z.number().int().describe("Pass as output_from to read on without re-reading."),
  skipped: z.number().int().describe("Bytes between the offset asked for and `from` that were cut (output beyond the limit, oldest first)."),
  text: z.string(),
  complete: z.boolean().describe("The task ended and every byte up to its end has been read."),
});
export type TaskOutputChunk = z.output<typeof taskOutputChunkSchema>;

export const runOutputSchema = z.object({ taskId: z.string(), slug: z.string(), startedAt: z.string() });
export type RunResult = z.output<typeof runOutputSchema>;

/** The bottle's task-io dir on the host disk: what every task (and anything else the agent put there) takes. */
export const taskDiskSchema = z.object({
  bytes: z.number().int().describe("Disk space in use (allocated blocks of every file and dir in the bottle's task dir, whoever wrote them)."),
  files: z.number().int(),
  limit: z
    .number()
    .int()
    .describe(`Bytes at which bottle_run refuses new tasks (BOTTLE_TASK_DISK_LIMIT_MB; default ${DEFAULT_TASK_DISK_LIMIT / MiB} MiB).`),
  over: z.boolean().describe("At or over the limit: no new tasks until space is freed (stop the bottle with purge, or raise the limit)."),
  partial: z.boolean().optional().describe(`The count stopped at ${MAX_DISK_ENTRIES} entries; the real use is larger.`),
});
export type TaskDisk = z.output<typeof taskDiskSchema>;

/** bottle_task: with a task id, that task (one entry) and its output from the cursor; without, every task, newest first. */
export const taskOutputSchema = z.object({
  tasks: z.array(taskInfoSchema),
  output: taskOutputChunkSchema.optional(),
  disk: taskDiskSchema.optional().describe("Without task_id: the host disk the bottle's task dir takes (not on reads of one task, so reading by cursor stays cheap)."),
});
export type TaskResult = z.output<typeof taskOutputSchema>;

export const cancelOutputSchema = z.object({
  task: taskInfoSchema,
  signalled: z.boolean().describe("Whether the task was still running and got signalled."),
  killed: z.boolean().describe("Whether it outlived the grace period and got SIGKILL."),
});
export type CancelResult = z.output<typeof cancelOutputSchema>;

export interface RunOptions extends CtxInput {
  vars?: Record<string, string>;
  cwd?: string;
  timeoutS?: number;
  stdin?: string;
  /** Output segment size; tests make it small to see the bound work. */
  segmentBytes?: number;
}

const newTaskId = (now: Date) => `t${now.getTime().toString(36)}-${randomBytes(3).toString("hex")}`;

function requireTaskId(id: unknown): string {
  if (typeof id !== "string" || !TASK_ID_RE.test(id))
    throw new BottleError("bad-input", `invalid task id ${JSON.stringify(id)}`, "Task ids look like t<base36>-<6 hex>; bottle_task without task_id lists them.");
  return id;
}

export async function runTask(slug: string, argv: string[], o: RunOptions = {}): Promise<RunResult> {
  const ctx = contextOf(o);
  const { meta, layout, project } = await openBottle(ctx, slug);
  if (meta.state !== "running") throw new BottleError("conflict", `bottle "${meta.slug}" is ${meta.state}, not running`, "Start it with bottle_start first.");
  if (!argv.length) throw new BottleError("bad-input", "argv must name a command to run");
  if (argv.some((a) => a.includes("\0"))) throw new BottleError("bad-input", "argv must not contain NUL bytes");
  for (const name of Object.keys(o.vars ?? {})) if (!ENV_NAME_RE.test(name)) throw new BottleError("bad-input", `invalid env name ${quote(name)}`);
  requireSpawnable(argv, o.vars);
  if (o.cwd !== undefined && (!o.cwd.startsWith("/") || o.cwd.includes("\0"))) throw new BottleError("bad-input", `cwd must be an absolute path in the agent container, got ${JSON.stringify(o.cwd)}`);
  if (o.timeoutS !== undefined && (!Number.isInteger(o.timeoutS) || o.timeoutS < 1 || o.timeoutS > MAX_TASK_TIMEOUT_S))
    throw new BottleError("bad-input", `timeout_s must be a whole number of seconds between 1 and ${MAX_TASK_TIMEOUT_S}`);
  if (!(await isDir(layout.taskIoDir))) throw new BottleError("conflict", `bottle "${meta.slug}" was started without a task dir`, "Restart it (bottle_stop, bottle_start) to run tasks in it.");
  const disk = await recentTaskDiskUsage(layout, ctx.env);
  if (disk.over)
    throw new BottleError(
      "conflict",
      `bottle "${meta.slug}"'s task dir uses ${mib(disk.bytes)} MiB of host disk, over its limit of ${mib(disk.limit)} MiB`,
      "Read what you need, then stop the bottle with purge to free it, or raise BOTTLE_TASK_DISK_LIMIT_MB.",
    );

  const now = ctx.now();
  const id = newTaskId(now);
  const segmentBytes = o.segmentBytes ?? SEGMENT_BYTES;
  await fs.mkdir(layout.tasksDir, { recursive: true, mode: 0o700 });
  // Made and filled where the agent cannot reach, then renamed into place:
  // the agent, watching its mount, cannot swap the dir for a symlink and have
  // the host write stdin elsewhere (a rename onto a symlink fails).
  const staging = taskStagingDir(layout, id);
  await fs.mkdir(staging, { mode: 0o755 });
  // World-writable: the agent may run as any uid (profile `user`), not only
  // root or ours. The bottle's state dir (0700) keeps other host users out.
  await fs.chmod(staging, 0o777);
  if (o.stdin !== undefined) await writeFileAtomic(nodePath.join(staging, "stdin"), o.stdin, 0o644);
  await fs.rename(staging, taskIoDirOf(layout, id));
  const record: TaskRecord = {
    id,
    slug: meta.slug,
    argv,
    envNames: Object.keys(o.vars ?? {}),
    ...(o.cwd !== undefined ? { cwd: o.cwd } : {}),
    ...(o.timeoutS !== undefined ? { timeoutS: o.timeoutS } : {}),
    startedAt: now.toISOString(),
    segmentBytes,
  };
  // The record first: a crash right after the start still leaves a task to find.
  await writeRecord(layout, record);
  try {
    await ctx.engine.execDetached(project, {
      service: "agent",
      argv: ["sh", "-c", WRAPPER, "bottle-task", `${MOUNTS.tasks}/${id}`, String(o.timeoutS ?? 0), String(segmentBytes), String(KEEP_SEGMENTS), ...argv],
      ...(o.vars ? { env: o.vars } : {}),
      ...(o.cwd !== undefined ? { cwd: o.cwd } : {}),
    });
  } catch (err) {
    await writeRecord(layout, { ...record, end: { state: "failed", endedAt: ctx.now().toISOString(), reason: `could not start: ${(err as Error).message}` } });
    throw err;
  }
  return { taskId: id, slug: meta.slug, startedAt: record.startedAt };
}

export interface TaskQuery extends CtxInput {
  taskId?: string;
  waitS?: number;
  from?: number;
  maxBytes?: number;
  signal?: AbortSignal;
  /** While waiting: seconds waited and output bytes so far. */
  onProgress?: (waitedS: number, outputBytes: number) => void;
}

export async function taskStatus(slug: string, q: TaskQuery = {}): Promise<TaskResult> {
  const base = contextOf(q);
  const { meta, layout } = requireBottle(base.root, slug);
  // Waits ask the engine whether the agent still runs: the engine that runs this bottle.
  const ctx = withEngine(base, meta.engine);
  if (q.taskId === undefined) {
    const tasks = await Promise.all((await taskIds(layout)).map((id) => loadTask(ctx, layout, meta, id)));
    return {
      tasks: tasks.flatMap((t) => (t ? [t.info] : [])).sort((a, b) => (a.startedAt === b.startedAt ? b.taskId.localeCompare(a.taskId) : b.startedAt.localeCompare(a.startedAt))),
      disk: await taskDiskUsage(layout, ctx.env),
    };
  }
  const id = requireTaskId(q.taskId);
  const from = q.from ?? 0;
  const maxBytes = q.maxBytes ?? DEFAULT_READ_BYTES;
  const waitS = q.waitS ?? 0;
  if (!Number.isInteger(from) || from < 0) throw new BottleError("bad-input", "output_from must be a byte offset (a whole number >= 0)");
  if (!Number.isInteger(maxBytes) || maxBytes < 1 || maxBytes > MAX_READ_BYTES) throw new BottleError("bad-input", `max_bytes must be between 1 and ${MAX_READ_BYTES}`);
  if (!(waitS >= 0 && waitS <= MAX_WAIT_S)) throw new BottleError("bad-input", `wait_s must be between 0 and ${MAX_WAIT_S}`);
  let t = await requireTask(ctx, layout, meta, id);
  if (waitS > 0 && t.info.state === "running") t = await waitForEnd(ctx, layout, meta, id, t, waitS, q);
  const output = await readOutput(layout, id, t.record.segmentBytes, from, maxBytes, t.info.state !== "running");
  return { tasks: [t.info], output };
}

async function waitForEnd(ctx: Ctx, layout: BottleLayout, meta: Metadata, id: string, first: Loaded, waitS: number, q: TaskQuery): Promise<Loaded> {
  const t0 = Date.now();
  let t = first;
  // The first look at the container comes after the first poll, then every LIVENESS_MS.
  let lastLiveness = t0 - LIVENESS_MS;
  let lastProgress = 0;
  while (t.info.state === "running" && !q.signal?.aborted) {
    const waited = Date.now() - t0;
    if (waited >= waitS * 1000) break;
    if (waited - lastProgress >= 1000) {
      lastProgress = waited;
      q.onProgress?.(Math.floor(waited / 1000), t.info.outputBytes);
    }
    await sleep(Math.min(POLL_MS, waitS * 1000 - waited), q.signal);
    if (Date.now() - lastLiveness >= LIVENESS_MS) {
      lastLiveness = Date.now();
      const agent = (await ctx.engine.ps(projectOf(meta)).catch(() => undefined))?.find((c) => c.service === "agent");
      if (agent && agent.state !== "running") {
        const after = await requireTask(ctx, layout, meta, id);
        if (after.info.state === "running") await endTask(layout, after.record, { state: "lost", endedAt: ctx.now().toISOString(), reason: `the agent container is ${agent.state}` });
      }
    }
    t = await requireTask(ctx, layout, meta, id);
  }
  return t;
}

export interface CancelOptions extends CtxInput {
  graceS?: number;
}

export async function cancelTask(slug: string, taskId: string, o: CancelOptions = {}): Promise<CancelResult> {
  const ctx = contextOf(o);
  const { meta, layout, project } = await openBottle(ctx, slug);
  const id = requireTaskId(taskId);
  const graceS = o.graceS ?? 5;
  if (!(graceS >= 0 && graceS <= MAX_GRACE_S)) throw new BottleError("bad-input", `grace_s must be between 0 and ${MAX_GRACE_S}`);
  let t = await requireTask(ctx, layout, meta, id);
  if (t.info.state !== "running") return { task: t.info, signalled: false, killed: false };
  await writeFileAtomic(taskCancelFile(layout, id), `${JSON.stringify({ at: ctx.now().toISOString(), graceS })}\n`, 0o600);
  const pgid = await waitForPid(layout, id);
  if (pgid === undefined) {
    // The wrapper never got as far as starting the command.
    t = await requireTask(ctx, layout, meta, id);
    if (t.info.state === "running") await endTask(layout, t.record, { state: "cancelled", endedAt: ctx.now().toISOString(), reason: "cancelled before the command started" });
    return { task: (await requireTask(ctx, layout, meta, id)).info, signalled: false, killed: false };
  }
  // The shell's kill builtin (slim images have no /bin/kill) on the group and on
  // whatever carries the task's id in its env. pgid is a checked number, id a checked id.
  // Detached: the signal lands as soon as the exec starts; the polls below see the end.
  const kill = (sig: "TERM" | "KILL") => ctx.engine.execDetached(project, { service: "agent", argv: ["sh", "-c", `${KILL_TREE}ktree ${sig} ${pgid} ${id}`] });
  await kill("TERM");
  const ended = async (ms: number) => {
    const until = Date.now() + ms;
    for (;;) {
      const now = await requireTask(ctx, layout, meta, id);
      if (now.info.state !== "running" || Date.now() >= until) return now;
      await sleep(POLL_MS);
    }
  };
  t = await ended(graceS * 1000);
  let killed = false;
  if (t.info.state === "running") {
    killed = true;
    await kill("KILL");
    t = await ended(1000);
  }
  return { task: t.info, signalled: true, killed };
}

/**
 * Called by stop before the containers go: tasks that already ended are
 * recorded as such; those still running are recorded as cancelled because
 * the bottle is being stopped (the containers going down ends them).
 */
export async function settleTasks(ctx: Ctx, layout: BottleLayout, meta: Metadata, why: string): Promise<number> {
  let n = 0;
  for (const id of await taskIds(layout)) {
    const t = await loadTask(ctx, layout, meta, id);
    if (t?.info.state !== "running") continue;
    await endTask(layout, t.record, { state: "cancelled", endedAt: ctx.now().toISOString(), reason: why });
    n++;
  }
  return n;
}

/** Every task of every bottle, for the resource list and completion. */
export async function allTaskRefs(o: CtxInput = {}): Promise<Array<{ slug: string; taskId: string }>> {
  const ctx = contextOf(o);
  const out: Array<{ slug: string; taskId: string }> = [];
  // From the layout alone: a state dir without metadata (a start that died early) does not hide the others.
  for (const slug of knownSlugs(ctx.root)) for (const taskId of await taskIds(layoutOf(ctx.root, slug))) out.push({ slug, taskId });
  return out;
}

/** Whether a task has ended (cheap: a stat or two; for subscription ticks). */
export async function taskEnded(slug: string, taskId: string, o: CtxInput = {}): Promise<boolean> {
  const ctx = contextOf(o);
  const { meta, layout } = requireBottle(ctx.root, slug);
  const t = await loadTask(ctx, layout, meta, requireTaskId(taskId));
  return t === undefined || t.info.state !== "running";
}

/** The resource text: the task's output, its newest `max` bytes at most. */
export async function taskOutputText(slug: string, taskId: string, o: CtxInput & { max?: number } = {}): Promise<string> {
  const ctx = contextOf(o);
  const { meta, layout } = requireBottle(ctx.root, slug);
  const t = await requireTask(ctx, layout, meta, requireTaskId(taskId));
  const max = o.max ?? 1024 * 1024;
  const chunk = await readOutput(layout, t.record.id, t.record.segmentBytes, Math.max(0, t.info.outputBytes - max), max, true);
  return chunk.text;
}

/** The task dir's limit from BOTTLE_TASK_DISK_LIMIT_MB (whole MiB), else the default. */
export function taskDiskLimit(env: NodeJS.ProcessEnv): number {
  const raw = env.BOTTLE_TASK_DISK_LIMIT_MB;
  if (raw === undefined || raw === "") return DEFAULT_TASK_DISK_LIMIT;
  if (!/^\d{1,9}$/.test(raw) || Number(raw) < 1) throw new BottleError("bad-input", `BOTTLE_TASK_DISK_LIMIT_MB must be a whole number of MiB (at least 1), got ${JSON.stringify(raw)}`);
  return Number(raw) * MiB;
}

/**
 * How much host disk a bottle's task-io dir takes. The agent can write there
 * directly, past the wrapper's bound on each task's output; the host cannot
 * stop that without a filesystem quota (see the README), so it counts what is
 * there, reports it, and refuses new tasks over the limit. Allocated blocks,
 * not sizes: a sparse file costs what it holds. Never follows a symlink.
 */
export async function taskDiskUsage(layout: BottleLayout, env: NodeJS.ProcessEnv): Promise<TaskDisk> {
  const limit = taskDiskLimit(env);
  let bytes = 0;
  let files = 0;
  let seen = 0;
  let partial = false;
  const dirs = [layout.taskIoDir];
  while (dirs.length) {
    const dir = dirs.pop()!;
    const names = await fs.readdir(dir).catch(() => [] as string[]);
    for (let i = 0; i < names.length; i += 64) {
      if (seen >= MAX_DISK_ENTRIES) {
        partial = true;
        break;
      }
      const batch = names.slice(i, i + Math.min(64, MAX_DISK_ENTRIES - seen));
      seen += batch.length;
      const stats = await Promise.all(batch.map((n) => fs.lstat(nodePath.join(dir, n)).catch(() => undefined)));
      for (const [k, st] of stats.entries()) {
        if (!st) continue;
        bytes += st.blocks * 512;
        if (st.isDirectory()) dirs.push(nodePath.join(dir, batch[k]!));
        else files++;
      }
    }
    if (partial) break;
  }
  const disk = { bytes, files, limit, over: bytes >= limit, ...(partial ? { partial } : {}) };
  diskCounts.set(layout.taskIoDir, { at: Date.now(), disk });
  return disk;
}

/** The last count of each task dir in this process: bottle_run takes one up to DISK_RECOUNT_MS old. */
const diskCounts = new Map<string, { at: number; disk: TaskDisk }>();
/** A count walks every file (tens of ms for a thousand tasks), so back-to-back runs share one. */
const DISK_RECOUNT_MS = 5_000;

async function recentTaskDiskUsage(layout: BottleLayout, env: NodeJS.ProcessEnv): Promise<TaskDisk> {
  const last = diskCounts.get(layout.taskIoDir);
  if (last && Date.now() - last.at < DISK_RECOUNT_MS && last.disk.limit === taskDiskLimit(env)) return last.disk;
  return taskDiskUsage(layout, env);
}

const mib = (n: number) => (n / MiB).toFixed(1);

export function taskDiskText(d: TaskDisk): string {
  return `task dir: ${mib(d.bytes)} MiB${d.partial ? "+" : ""} in ${d.files}${d.partial ? "+" : ""} files, limit ${mib(d.limit)} MiB${d.over ? " (over: bottle_run refuses new tasks)" : ""}`;
}

export function taskText(t: TaskInfo): string {
  const how = t.state === "running" ? "running" : `${t.state}${t.exitCode !== undefined ? ` (exit ${t.exitCode})` : ""}${t.reason ? `: ${t.reason}` : ""}`;
  return `${t.taskId}  ${how}  started ${t.startedAt}${t.endedAt ? `, ended ${t.endedAt}` : ""}  ${t.outputBytes} bytes of output${t.outputCut ? ` (${t.outputCut} oldest cut)` : ""}  ${JSON.stringify(t.argv)}`;
}

// --- internals

interface Loaded {
  record: TaskRecord;
  info: TaskInfo;
}

async function taskIds(layout: BottleLayout): Promise<string[]> {
  const names = await fs.readdir(layout.tasksDir).catch(() => [] as string[]);
  return names.flatMap((n) => {
    const id = n.endsWith(".json") ? n.slice(0, -5) : "";
    return TASK_ID_RE.test(id) ? [id] : [];
  });
}

async function requireTask(ctx: Ctx, layout: BottleLayout, meta: Metadata, id: string): Promise<Loaded> {
  const t = await loadTask(ctx, layout, meta, id);
  if (!t) throw new BottleError("unknown-slug", `bottle "${meta.slug}" has no task "${id}"`, "bottle_task without task_id lists its tasks.");
  return t;
}

async function writeRecord(layout: BottleLayout, r: TaskRecord): Promise<void> {
  await writeFileAtomic(taskRecordFile(layout, r.id), `${JSON.stringify(r)}\n`, 0o600);
}

async function endTask(layout: BottleLayout, r: TaskRecord, end: NonNullable<TaskRecord["end"]>): Promise<void> {
  await writeRecord(layout, { ...r, end });
}

/** A task's record, with its state observed from the task dir (and recorded once it has ended). */
async function loadTask(ctx: Ctx, layout: BottleLayout, meta: Metadata, id: string): Promise<Loaded | undefined> {
  const text = await fs.readFile(taskRecordFile(layout, id), "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  const parsed = recordSchema.safeParse(JSON.parse(text));
  if (!parsed.success) return undefined;
  let record = parsed.data;
  if (!record.end) {
    const end = await observeEnd(ctx, layout, record, meta);
    if (end) {
      record = { ...record, end };
      await writeRecord(layout, record);
    }
  }
  const { total, cut } = await outputExtent(layout, id, record.segmentBytes);
  const e = record.end;
  return {
    record,
    info: {
      taskId: id,
      slug: record.slug,
      state: e?.state ?? "running",
      argv: record.argv,
      ...(e?.exitCode !== undefined ? { exitCode: e.exitCode } : {}),
      startedAt: record.startedAt,
      ...(e ? { endedAt: e.endedAt } : {}),
      ...(e?.reason ? { reason: e.reason } : {}),
      outputBytes: total,
      outputCut: cut,
    },
  };
}

async function observeEnd(ctx: Ctx, layout: BottleLayout, r: TaskRecord, meta: Metadata): Promise<TaskRecord["end"]> {
  // The agent can remove or replace its task dir (then nothing in it is read through a symlink).
  if (!(await isDir(taskIoDirOf(layout, r.id)))) return { state: "failed", endedAt: ctx.now().toISOString(), reason: "the task's dir in the agent was removed or replaced" };
  const endStat = await statRegular(taskIoFile(layout, r.id, "end"));
  if (endStat) {
    const codeText = await readSmall(taskIoFile(layout, r.id, "code"));
    const code = codeText !== undefined && /^\d{1,3}\n?$/.test(codeText) ? Number(codeText.trim()) : undefined;
    const timedOut = (await statRegular(taskIoFile(layout, r.id, "timed_out"))) !== undefined;
    const endedAt = endStat.mtime.toISOString();
    const withCode = code !== undefined ? { exitCode: code } : {};
    const cancel = await fs.readFile(taskCancelFile(layout, r.id), "utf8").then(
      (t) => JSON.parse(t) as { at: string },
      () => undefined,
    );
    if (cancel) return { state: "cancelled", endedAt, ...withCode, reason: `cancelled at ${cancel.at}` };
    if (timedOut) return { state: "timed_out", endedAt, ...withCode, reason: `timed out after ${r.timeoutS} s` };
    if (code === 0) return { state: "exited", endedAt, exitCode: 0 };
    return { state: "failed", endedAt, ...withCode, ...(code === undefined ? { reason: "the task wrapper wrote no exit code" } : {}) };
  }
  if (meta.state !== "running") return { state: "lost", endedAt: ctx.now().toISOString(), reason: `the bottle is ${meta.state}: its agent container is gone` };
  return undefined;
}

async function waitForPid(layout: BottleLayout, id: string): Promise<number | undefined> {
  const until = Date.now() + 3000;
  for (;;) {
    const text = await readSmall(taskIoFile(layout, id, "pid"));
    // A process group id the agent wrote: a positive number, never 1 (init) or -1 (everything).
    if (text !== undefined && /^\d{1,10}\n?$/.test(text) && Number(text) > 1) return Number(text);
    if ((await statRegular(taskIoFile(layout, id, "end"))) || Date.now() >= until) return undefined;
    await sleep(POLL_MS);
  }
}

/** The task dir's segments, oldest first, with their stream index. */
async function segments(layout: BottleLayout, id: string): Promise<Array<{ index: number; name: string }>> {
  // The agent can replace its task dir; a symlink in its place is not followed.
  if (!(await isDir(taskIoDirOf(layout, id)))) return [];
  const names = await fs.readdir(taskIoDirOf(layout, id)).catch(() => [] as string[]);
  return names
    .flatMap((name) => {
      const m = SEGMENT_RE.exec(name);
      return m ? [{ index: segmentIndex(m[1]!), name }] : [];
    })
    .sort((a, b) => a.index - b.index);
}

async function outputExtent(layout: BottleLayout, id: string, segmentBytes: number): Promise<{ total: number; cut: number }> {
  const segs = await segments(layout, id);
  if (!segs.length) return { total: 0, cut: 0 };
  const last = segs[segs.length - 1]!;
  const size = (await statRegular(taskIoFile(layout, id, last.name)))?.size ?? 0;
  return { total: last.index * segmentBytes + size, cut: segs[0]!.index * segmentBytes };
}

export async function readOutput(layout: BottleLayout, id: string, segmentBytes: number, from: number, maxBytes: number, ended: boolean): Promise<TaskOutputChunk> {
  const r = await readOutputBytes(layout, id, segmentBytes, from, maxBytes);
  let bytes = r.bytes;
  // Never end a chunk inside a UTF-8 character: the next read starts at its first byte.
  if (!r.atEnd || !ended) bytes = bytes.subarray(0, utf8Boundary(bytes));
  return { from: r.start, next: r.start + bytes.length, skipped: r.start - from, text: bytes.toString("utf8"), complete: ended && r.atEnd };
}

/** Raw output bytes from a cursor: where they start (a cut cursor moves on), and whether they reach the end of what is written. */
async function readOutputBytes(layout: BottleLayout, id: string, segmentBytes: number, from: number, maxBytes: number, retry = true): Promise<{ start: number; bytes: Buffer; atEnd: boolean }> {
  const segs = await segments(layout, id);
  const first = segs[0]?.index ?? 0;
  const start = Math.max(from, first * segmentBytes);
  // One buffer, read into in place: no per-segment buffers to join.
  const buf = Buffer.allocUnsafe(maxBytes);
  let got = 0;
  let pos = start;
  let atEnd = false;
  while (got < maxBytes) {
    const index = Math.floor(pos / segmentBytes);
    const seg = segs.find((s) => s.index === index);
    if (!seg) {
      atEnd = true;
      break;
    }
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(taskIoFile(layout, id, seg.name), constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      // Trimmed by the monitor between the listing and the open: list again.
      if ((err as NodeJS.ErrnoException).code === "ENOENT" && retry) return readOutputBytes(layout, id, segmentBytes, from, maxBytes, false);
      throw err;
    }
    try {
      if (!(await fh.stat()).isFile()) break;
      const want = Math.min(maxBytes - got, segmentBytes - (pos % segmentBytes));
      const { bytesRead } = await fh.read(buf, got, want, pos % segmentBytes);
      got += bytesRead;
      pos += bytesRead;
      if (bytesRead < want) {
        atEnd = true;
        break;
      }
    } finally {
      await fh.close();
    }
  }
  return { start, bytes: buf.subarray(0, got), atEnd };
}

// --- output times (bottle_logs' task view)

/** "By `ms`, the stream had `offset` bytes": one line of MARKS_FILE. */
export interface OutputMark {
  offset: number;
  ms: number;
}

/** A line of output with the window it was written in. */
export interface TimedLine {
  text: string;
  /** The line was complete by then (the first mark that covers it, else the task's end, else the time of reading). */
  atMs: number;
  /** It was written after this (the last mark before its first byte, else the task's start). */
  afterMs: number;
}

const MARK_RE = /^(\d{1,12})(?:\.(\d{1,9}))?\S* out\.([a-z]{4}) +(\d{1,12})$/;
const segmentIndex = (letters: string) => [...letters].reduce((n, ch) => n * 26 + (ch.charCodeAt(0) - 97), 0);

/** MARKS_FILE's lines, strictly: agent-written, so only marks that go forward in both bytes and time are kept. */
export function parseMarks(text: string, segmentBytes: number): OutputMark[] {
  const out: OutputMark[] = [];
  for (const line of text.split("\n")) {
    const m = MARK_RE.exec(line);
    if (!m) continue;
    const ms = Number(m[1]) * 1000 + Number((m[2] ?? "").padEnd(3, "0").slice(0, 3));
    const offset = segmentIndex(m[3]!) * segmentBytes + Number(m[4]);
    const prev = out[out.length - 1];
    if (prev && (offset <= prev.offset || ms < prev.ms)) continue;
    out.push({ offset, ms });
  }
  return out;
}

/**
 * Split `bytes` (stream offset `start`) into lines, each timed by the marks:
 * complete by the first mark at or past its end, begun after the last mark
 * at or before its start. Bytes no mark covers get `bounds.endMs`; every
 * time is held within the task's start and end.
 */
export function timeLines(bytes: Buffer, start: number, marks: readonly OutputMark[], bounds: { startMs: number; endMs: number }): TimedLine[] {
  const out: TimedLine[] = [];
  let pos = 0;
  let by = 0; // first mark with offset >= the line's end
  let before = -1; // last mark with offset <= the line's start
  while (pos < bytes.length) {
    const nl = bytes.indexOf(10, pos);
    const end = nl < 0 ? bytes.length : nl + 1;
    while (by < marks.length && marks[by]!.offset < start + end) by++;
    while (before + 1 < marks.length && marks[before + 1]!.offset <= start + pos) before++;
    // Nothing is written before the task started or after it ended, whatever the (agent-written) marks say.
    const within = (ms: number) => Math.min(Math.max(ms, bounds.startMs), Math.max(bounds.startMs, bounds.endMs));
    const afterMs = within(before >= 0 ? marks[before]!.ms : bounds.startMs);
    const atMs = Math.max(afterMs, within(by < marks.length ? marks[by]!.ms : bounds.endMs));
    out.push({ text: bytes.subarray(pos, nl < 0 ? end : nl).toString("utf8"), atMs, afterMs });
    pos = end;
  }
  return out;
}

/** Max bytes of a task's output bottle_logs times (the newest; older lines are left out). */
export const MAX_TIMED_BYTES = MAX_READ_BYTES;

/** A task's newest output lines (at most `maxLines`, from its newest MAX_TIMED_BYTES), each with when it was written. */
export async function taskTimedLines(ctx: Ctx, layout: BottleLayout, meta: Metadata, taskId: string, maxLines: number): Promise<{ info: TaskInfo; lines: TimedLine[] }> {
  const id = requireTaskId(taskId);
  const t = await requireTask(ctx, layout, meta, id);
  const from = Math.max(t.info.outputCut, t.info.outputBytes - MAX_TIMED_BYTES);
  const r = await readOutputBytes(layout, id, t.record.segmentBytes, from, MAX_TIMED_BYTES);
  let bytes = r.bytes;
  let start = r.start;
  // A window that starts inside the stream starts inside a line: begin at the next whole one.
  if (start > t.info.outputCut) {
    const nl = bytes.indexOf(10);
    bytes = nl < 0 ? Buffer.alloc(0) : bytes.subarray(nl + 1);
    start += r.bytes.length - bytes.length;
  }
  const marksText = await readBounded(taskIoFile(layout, id, MARKS_FILE), MAX_MARKS_BYTES);
  const marks = marksText === undefined ? [] : parseMarks(marksText, t.record.segmentBytes);
  const endMs = t.record.end ? Date.parse(t.record.end.endedAt) : ctx.now().getTime();
  const lines = timeLines(bytes, start, marks, { startMs: Date.parse(t.record.startedAt), endMs });
  return { info: t.info, lines: lines.slice(-maxLines) };
}

/** MAX_MARKS lines of up to ~48 bytes. */
const MAX_MARKS_BYTES = MAX_MARKS * 48;

/** The length of the longest prefix of `b` that does not end inside a multi-byte UTF-8 sequence. */
export function utf8Boundary(b: Buffer): number {
  for (let back = 1; back <= Math.min(3, b.length); back++) {
    const byte = b[b.length - back]!;
    if ((byte & 0xc0) === 0x80) continue; // continuation byte
    const need = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return need > back ? b.length - back : b.length;
  }
  return b.length;
}

async function statRegular(path: string) {
  const st = await fs.lstat(path).catch(() => undefined);
  return st?.isFile() ? st : undefined;
}

function readSmall(path: string): Promise<string | undefined> {
  return readBounded(path, 64);
}

/** The first `max` bytes of an agent-written file (not through a symlink, only a regular file); undefined when there is none. */
async function readBounded(path: string, max: number): Promise<string | undefined> {
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    const st = await fh.stat();
    if (!st.isFile()) return undefined;
    const buf = Buffer.alloc(Math.min(max, st.size || max));
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead).toString("utf8");
  } catch {
    return undefined;
  } finally {
    await fh?.close();
  }
}

async function isDir(path: string): Promise<boolean> {
  return (await fs.lstat(path).catch(() => undefined))?.isDirectory() ?? false;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
