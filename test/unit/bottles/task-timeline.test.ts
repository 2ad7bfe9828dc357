// bottle_logs with a task id: the task's output lines, timed by the marks its
// wrapper writes, interleaved with the sidecars' decisions by time. The fake
// engine runs the real wrapper with the host's sh on the task-io dir, and
// tests put decision lines into its logs at known moments.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import nodePath from "node:path";
import { describe, expect, it } from "vitest";
import { bottleLogs, logsOutputSchema, timelineText } from "../../../src/bottles/logs.js";
import { startBottle } from "../../../src/bottles/start.js";
import { logsVerb } from "../../../src/cli/logs.js";
import { stopBottle } from "../../../src/bottles/stop.js";
import { listBottles } from "../../../src/bottles/list.js";
import { DEFAULT_TASK_DISK_LIMIT, MARKS_FILE, parseMarks, runTask, taskDiskUsage, taskStatus, timeLines } from "../../../src/bottles/tasks.js";
import { MOUNTS } from "../../../src/contracts/mounts.js";
import { containerName } from "../../../src/plan/index.js";
import { layoutOf, taskIoDirOf, taskRecordFile } from "../../../src/state/layout.js";
import { world } from "./fixture.js";

async function running(slug = "web-tl") {
  const w = world();
  const layout = layoutOf(w.root, slug);
  w.engine.onExecDetached = (_p, r) => {
    const argv = r.argv.map((a) => (a.startsWith(`${MOUNTS.tasks}/`) ? nodePath.join(layout.taskIoDir, a.slice(MOUNTS.tasks.length + 1)) : a));
    spawn(argv[0]!, argv.slice(1), { detached: true, stdio: "ignore", env: { ...process.env, ...r.env } }).unref();
  };
  const r = await startBottle({ ...w.ctx, profile: "web", slug });
  const logs = w.engine.projects.get(`bottle-${r.metadata.slug}`)!.logs;
  /** A sidecar's line as compose prints it with --timestamps. */
  const sidecar = (service: string, fields: Record<string, unknown>, at = new Date()) =>
    logs.push(`${containerName(service, r.metadata.slug)} | ${at.toISOString()} ${JSON.stringify({ ts: at.toISOString(), mode: service, ...fields })}`);
  return { ...w, slug: r.metadata.slug, layout, sidecar };
}

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

async function untilOutput(slug: string, ctx: object, taskId: string, text: string) {
  for (let i = 0; i < 100; i++) {
    const r = await taskStatus(slug, { ...ctx, taskId });
    if (r.output!.text.includes(text)) return;
    await sleep(30);
  }
  throw new Error(`no "${text}" in the task's output`);
}

describe("a task's timeline in bottle_logs", () => {
  it("interleaves the task's output with the firewall's decisions in the order they happened, live and after stop", async () => {
    const w = await running();
    w.sidecar("firewall", { event: "connect", host: "before.test", decision: "allowed" }, new Date(Date.now() - 60_000));
    const { taskId } = await runTask(w.slug, ["sh", "-c", "echo 'fetching allowed'; sleep 0.8; echo 'fetching blocked'; sleep 0.8; echo done"], w.ctx);
    await untilOutput(w.slug, w.ctx, taskId, "fetching allowed");
    await sleep(300);
    w.sidecar("firewall", { event: "connect", host: "allowed.test", port: 443, decision: "allowed", rule: "allowlist" });
    w.sidecar("firewall", { event: "config_reloaded" }); // not a decision
    await untilOutput(w.slug, w.ctx, taskId, "fetching blocked");
    await sleep(300);
    w.sidecar("firewall", { event: "connect", host: "blocked.test", port: 443, decision: "blocked", rule: "allowlist" });
    w.sidecar("git-gate", { event: "push", verdict: "refused", ref: "refs/heads/main" });
    await taskStatus(w.slug, { ...w.ctx, taskId, waitS: 10 });
    // After the task's end: not in its timeline, live or saved.
    w.sidecar("firewall", { event: "connect", host: "after.test", decision: "blocked" }, new Date(Date.now() + 10_000));

    const r = logsOutputSchema.parse(await bottleLogs({ ...w.ctx, slug: w.slug, taskId }));
    const seq = r.timeline!.map((e) => `${e.source}: ${e.source === "task" ? e.text : (JSON.parse(e.text).host ?? JSON.parse(e.text).verdict)}`);
    expect(seq).toEqual(["task: fetching allowed", "firewall: allowed.test", "task: fetching blocked", "firewall: blocked.test", "git-gate: refused", "task: done"]);
    expect(r).toMatchObject({ source: "live", task: { taskId, state: "exited" } });
    for (const e of r.timeline!) if (e.source === "task") expect(Date.parse(e.after!)).toBeLessThanOrEqual(Date.parse(e.time));
    expect(r.lines).toEqual(r.timeline!.map(timelineText));
    // The wrapper wrote the marks that timed the lines.
    expect(parseMarks(readFileSync(nodePath.join(taskIoDirOf(w.layout, taskId), MARKS_FILE), "utf8"), 8 << 20).length).toBeGreaterThanOrEqual(2);

    // Filters: grep over both sources, tail keeps the newest, service narrows the sidecars.
    expect((await bottleLogs({ ...w.ctx, slug: w.slug, taskId, grep: "blocked" })).timeline!.map((e) => e.source)).toEqual(["task", "firewall"]);
    expect((await bottleLogs({ ...w.ctx, slug: w.slug, taskId, tail: 2 })).timeline!.map((e) => e.source)).toEqual(["git-gate", "task"]);
    expect((await bottleLogs({ ...w.ctx, slug: w.slug, taskId, service: "git-gate" })).timeline!.map((e) => e.source)).toEqual(["task", "task", "git-gate", "task"]);

    // After stop, the same timeline comes from the saved compose.log.
    await stopBottle(w.slug, w.ctx);
    const saved = await bottleLogs({ ...w.ctx, slug: w.slug, taskId });
    expect(saved.source).toBe("file");
    expect(saved.timeline).toEqual(r.timeline);
  }, 20_000);

  it("times lines no mark covers by the task's end, and escapes the task's text in the lines", async () => {
    const w = await running();
    const { taskId } = await runTask(w.slug, ["sh", "-c", "printf 'a\\033[2Jb\\n'"], w.ctx);
    const t = (await taskStatus(w.slug, { ...w.ctx, taskId, waitS: 10 })).tasks[0]!;
    const r = await bottleLogs({ ...w.ctx, slug: w.slug, taskId });
    expect(r.timeline).toEqual([{ time: expect.any(String), after: expect.any(String), source: "task", text: "a\u001b[2Jb" }]);
    const [line] = r.timeline!;
    expect(Date.parse(line!.after!)).toBeGreaterThanOrEqual(Date.parse(t.startedAt));
    expect(Date.parse(line!.time)).toBeLessThanOrEqual(Date.parse(t.endedAt!));
    expect(r.lines[0]).toContain("a\\x1b[2Jb");
  });

  it("refuses an unknown task, a bad id and an unknown service", async () => {
    const w = await running();
    await expect(bottleLogs({ ...w.ctx, slug: w.slug, taskId: "../x" })).rejects.toThrow(/invalid task id/);
    await expect(bottleLogs({ ...w.ctx, slug: w.slug, taskId: "tabc-123456" })).rejects.toThrow(/has no task/);
    const { taskId } = await runTask(w.slug, ["true"], w.ctx);
    await expect(bottleLogs({ ...w.ctx, slug: w.slug, taskId, service: "nope" })).rejects.toThrow(/no service "nope"/);
    await expect(bottleLogs({ ...w.ctx, slug: w.slug, taskId, since: "yesterday-ish" })).rejects.toThrow(/since must be/);
    // The CLI reads a timeline once; it does not follow one.
    await expect(logsVerb.run([w.slug, "--task", taskId, "-f"])).rejects.toThrow(/does not follow/);
  });

  it("since narrows both sources: nothing from before it", async () => {
    const w = await running();
    const { taskId } = await runTask(w.slug, ["sh", "-c", "echo early; sleep 0.8; echo late; sleep 0.8"], w.ctx);
    await untilOutput(w.slug, w.ctx, taskId, "early");
    await sleep(300);
    w.sidecar("firewall", { event: "connect", host: "early.test", decision: "blocked" });
    await sleep(100);
    const cut = new Date().toISOString();
    await untilOutput(w.slug, w.ctx, taskId, "late");
    await sleep(300);
    w.sidecar("firewall", { event: "connect", host: "late.test", decision: "blocked" });
    await taskStatus(w.slug, { ...w.ctx, taskId, waitS: 10 });
    const all = await bottleLogs({ ...w.ctx, slug: w.slug, taskId });
    expect(all.timeline!.map((e) => e.source)).toEqual(["task", "firewall", "task", "firewall"]);
    const since = await bottleLogs({ ...w.ctx, slug: w.slug, taskId, since: cut });
    expect(since.timeline!.map((e) => (e.source === "task" ? e.text : JSON.parse(e.text).host))).toEqual(["late", "late.test"]);
  });

  it("an agent's lying marks cannot move its output outside the task's run or out of stream order", async () => {
    const w = await running();
    const { taskId } = await runTask(w.slug, ["sh", "-c", "echo one; echo two"], w.ctx);
    const t = (await taskStatus(w.slug, { ...w.ctx, taskId, waitS: 10 })).tasks[0]!;
    writeFileSync(nodePath.join(taskIoDirOf(w.layout, taskId), MARKS_FILE), "9999999999.0 out.aaaa 4\n1.0 out.aaaa 8\nnot a mark\n");
    const r = await bottleLogs({ ...w.ctx, slug: w.slug, taskId });
    expect(r.timeline!.map((e) => e.text)).toEqual(["one", "two"]);
    for (const e of r.timeline!) {
      expect(Date.parse(e.time)).toBeLessThanOrEqual(Date.parse(t.endedAt!));
      expect(Date.parse(e.after!)).toBeGreaterThanOrEqual(Date.parse(t.startedAt));
    }
    expect(existsSync(taskRecordFile(w.layout, taskId))).toBe(true);
  });
});

describe("output marks", () => {
  it("parses marks strictly: fractions, none (a date without %N), padded sizes, later segments; backwards marks are dropped", () => {
    const text = ["100.250000000 out.aaaa 10", "101 out.aaaa     20", "102.%N out.aaab 5", "101.5 out.aaab 6", "103.1 out.aaab 4", "junk", "104.0 ../x 9"].join("\n");
    expect(parseMarks(text, 100)).toEqual([
      { offset: 10, ms: 100_250 },
      { offset: 20, ms: 101_000 },
      { offset: 105, ms: 102_000 },
    ]);
  });

  it("times each line: complete by the first mark at or past its end, begun after the last mark at or before its start", () => {
    const bytes = Buffer.from("aa\nbb\ncc\ndd");
    const marks = [
      { offset: 3, ms: 1000 },
      { offset: 7, ms: 2000 },
    ];
    expect(timeLines(bytes, 0, marks, { startMs: 500, endMs: 3000 })).toEqual([
      { text: "aa", afterMs: 500, atMs: 1000 },
      { text: "bb", afterMs: 1000, atMs: 2000 },
      { text: "cc", afterMs: 1000, atMs: 3000 },
      { text: "dd", afterMs: 2000, atMs: 3000 },
    ]);
    // A window that starts later in the stream keeps the offsets right.
    expect(timeLines(Buffer.from("cc\n"), 6, marks, { startMs: 500, endMs: 3000 })).toEqual([{ text: "cc", afterMs: 1000, atMs: 3000 }]);
  });
});

describe("the timeline's saved sidecar lines", () => {
  it("a stopped bottle without a compose.log gives the task's lines alone", async () => {
    const w = await running();
    const { taskId } = await runTask(w.slug, ["sh", "-c", "echo hi"], w.ctx);
    await taskStatus(w.slug, { ...w.ctx, taskId, waitS: 10 });
    await stopBottle(w.slug, w.ctx);
    mkdirSync(w.layout.stateDir, { recursive: true });
    const r = await bottleLogs({ ...w.ctx, slug: w.slug, taskId });
    expect(r.timeline!.map((e) => e.text)).toEqual(["hi"]);
  });
});

describe("the task dir's share of the host disk", () => {
  it("counts what the agent put there (blocks, not sizes; a symlink is not followed), reports it, and refuses new tasks over the limit", async () => {
    const w = await running("web-disk");
    const { taskId } = await runTask(w.slug, ["sh", "-c", "echo hi"], w.ctx);
    await taskStatus(w.slug, { ...w.ctx, taskId, waitS: 10 });
    await sleep(500); // the wrapper's monitor has seen the end and left: nothing more is written
    const base = await taskDiskUsage(w.layout, w.env);
    expect(base).toMatchObject({ files: expect.any(Number), limit: DEFAULT_TASK_DISK_LIMIT, over: false });
    expect(base.files).toBeGreaterThanOrEqual(4); // out.aaaa, pid, code, end (and the marks)

    // The agent writes past the wrapper, straight into its mount: 2 MiB of data, a sparse 1 GiB file, a symlink to a big host file.
    const junk = nodePath.join(w.layout.taskIoDir, "junk");
    mkdirSync(junk);
    writeFileSync(nodePath.join(junk, "data"), Buffer.alloc(2 * 1024 * 1024, 1));
    truncateSync(writeAndReturn(nodePath.join(junk, "sparse")), 1024 ** 3);
    const hostBig = nodePath.join(w.dir, "host-big");
    writeFileSync(hostBig, Buffer.alloc(3 * 1024 * 1024, 2));
    symlinkSync(hostBig, nodePath.join(junk, "link"));
    const after = await taskDiskUsage(w.layout, w.env);
    expect(after.files).toBe(base.files + 3);
    expect(after.bytes - base.bytes).toBeGreaterThanOrEqual(2 * 1024 * 1024);
    expect(after.bytes - base.bytes).toBeLessThan(2.5 * 1024 * 1024);

    // Reported by bottle_task (both forms) and bottle_list.
    expect((await taskStatus(w.slug, w.ctx)).disk).toEqual(after);
    expect((await taskStatus(w.slug, { ...w.ctx, taskId })).disk).toBeUndefined(); // reads by cursor stay cheap
    expect((await listBottles(w.ctx)).find((b) => b.slug === w.slug)?.taskDisk).toEqual(after);

    // Over the limit: bottle_run refuses and starts nothing.
    const tight = { ...w.ctx, env: { ...w.env, BOTTLE_TASK_DISK_LIMIT_MB: "2" } };
    expect((await taskStatus(w.slug, tight)).disk).toMatchObject({ over: true, limit: 2 * 1024 * 1024 });
    const calls = w.engine.calls.length;
    await expect(runTask(w.slug, ["true"], tight)).rejects.toMatchObject({ code: "conflict", message: expect.stringMatching(/task dir uses .* MiB of host disk, over its limit of 2\.0 MiB/) });
    expect(w.engine.calls.length).toBe(calls);
    expect((await taskStatus(w.slug, w.ctx)).tasks).toHaveLength(1);
    await expect(runTask(w.slug, ["true"], { ...w.ctx, env: { ...w.env, BOTTLE_TASK_DISK_LIMIT_MB: "lots" } })).rejects.toThrow(/BOTTLE_TASK_DISK_LIMIT_MB must be a whole number/);
  });
});

function writeAndReturn(path: string): string {
  writeFileSync(path, "");
  return path;
}
