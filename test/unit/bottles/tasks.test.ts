// Tasks against the fake engine, with the real wrapper: the fake runs the
// wrapper script with the host's sh on the bottle's task-io dir (standing in
// for the agent container's mount), and runs cancel's kill locally, so the
// record/observe/read logic and the wrapper are tested together without Docker.
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, renameSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import nodePath from "node:path";
import { describe, expect, it } from "vitest";
import { renderProfile } from "../../../src/bottles/render.js";
import { startBottle } from "../../../src/bottles/start.js";
import { stopBottle } from "../../../src/bottles/stop.js";
import { allTaskRefs, cancelTask, readOutput, runTask, taskEnded, taskStatus, utf8Boundary } from "../../../src/bottles/tasks.js";
import { MOUNTS } from "../../../src/contracts/mounts.js";
import type { BottleError } from "../../../src/errors.js";
import { renderCompose } from "../../../src/render/compose.js";
import { layoutOf, taskIoDirOf, taskRecordFile } from "../../../src/state/layout.js";
import { world } from "./fixture.js";

async function running(slug = "web-t") {
  const w = world();
  const layout = layoutOf(w.root, slug);
  // The wrapper, run by the host's sh on the task-io dir instead of in a container.
  w.engine.onExecDetached = (_p, r) => {
    const argv = r.argv.map((a) => (a.startsWith(`${MOUNTS.tasks}/`) ? nodePath.join(layout.taskIoDir, a.slice(MOUNTS.tasks.length + 1)) : a));
    const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: "ignore", env: { ...process.env, ...r.env }, ...(r.cwd ? { cwd: r.cwd } : {}) });
    child.unref();
  };
  w.engine.onExec = async (_p, r) => {
    const child = spawn(r.argv[0]!, r.argv.slice(1), { stdio: "ignore" });
    const exitCode = await new Promise<number>((res) => child.on("exit", (c) => res(c ?? -1)));
    return { exitCode, stdout: "", stderr: "", timedOut: false };
  };
  const r = await startBottle({ ...w.ctx, profile: "web", slug });
  return { ...w, slug: r.metadata.slug, layout };
}

/** Running, not a zombie: an orphan's reaper here (this machine's PID 1) may never reap it; the agent's init does. */
const alive = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]![0] !== "Z";
  } catch {
    return false;
  }
};

describe("tasks on the fake engine with the real wrapper", () => {
  it("renders the agent's task-io mount read-write, and only the agent's", async () => {
    const w = await running();
    const compose = renderCompose(renderProfile({ profile: "web", slug: "web-r", env: w.env }).plan);
    const mounts = Object.entries(compose.services).flatMap(([s, svc]) => (svc.volumes ?? []).filter((v) => v.target === MOUNTS.tasks).map((v) => ({ s, ro: v.read_only, source: v.source })));
    expect(mounts).toEqual([{ s: "agent", ro: false, source: layoutOf(w.root, "web-r").taskIoDir }]);
  });

  it("runs detached, reports running, waits to the end with progress, and keeps the result in the state dir", async () => {
    const w = await running();
    const { taskId } = await runTask(w.slug, ["sh", "-c", 'echo "out $FOO"; echo err >&2; sleep 0.5; echo done; exit 3'], { ...w.ctx, vars: { FOO: "bar" } });
    expect(w.engine.calls.find((c) => c.op === "execDetached")?.args[2]).toEqual(expect.arrayContaining(["sh", "-c"]));
    // The value reached the command through the env, never argv.
    expect(JSON.stringify(w.engine.calls)).not.toContain("bar");
    const first = await taskStatus(w.slug, { ...w.ctx, taskId });
    expect(first.tasks[0]).toMatchObject({ taskId, state: "running", argv: ["sh", "-c", expect.any(String)] });
    const done = await taskStatus(w.slug, { ...w.ctx, taskId, waitS: 20 });
    expect(done.tasks[0]).toMatchObject({ state: "failed", exitCode: 3, endedAt: expect.any(String) });
    expect(done.output).toMatchObject({ from: 0, skipped: 0, complete: true, text: "out bar\nerr\ndone\n" });
    expect(done.output!.next).toBe(Buffer.byteLength("out bar\nerr\ndone\n"));
    // A fresh process sees the same thing: it is all on disk.
    expect(JSON.parse(readFileSync(taskRecordFile(w.layout, taskId), "utf8")).end).toMatchObject({ state: "failed", exitCode: 3 });
    expect(await taskEnded(w.slug, taskId, w.ctx)).toBe(true);
  });

  it("reads incrementally by cursor while the task runs, and lists tasks newest first", async () => {
    const w = await running();
    const a = await runTask(w.slug, ["true"], w.ctx);
    const b = await runTask(w.slug, ["sh", "-c", "printf 'one\\n'; sleep 0.6; printf 'two\\n'"], w.ctx);
    let r = await taskStatus(w.slug, { ...w.ctx, taskId: b.taskId });
    for (let i = 0; i < 50 && r.output!.next === 0; i++) {
      await new Promise((res) => setTimeout(res, 50));
      r = await taskStatus(w.slug, { ...w.ctx, taskId: b.taskId });
    }
    expect(r.output!.text).toBe("one\n");
    expect(r.tasks[0]!.state).toBe("running");
    const rest = await taskStatus(w.slug, { ...w.ctx, taskId: b.taskId, waitS: 10, from: r.output!.next });
    expect(rest.output).toMatchObject({ from: 4, text: "two\n", next: 8, complete: true });
    const all = await taskStatus(w.slug, w.ctx);
    expect(all.tasks.map((t) => t.taskId)).toEqual([b.taskId, a.taskId]);
    expect(all.output).toBeUndefined();
  });

  it("times out: TERM to the task's process group, state timed_out", async () => {
    const w = await running();
    const { taskId } = await runTask(w.slug, ["sh", "-c", "sleep 30"], { ...w.ctx, timeoutS: 2 });
    const ticks: number[] = [];
    const r = await taskStatus(w.slug, { ...w.ctx, taskId, waitS: 10, onProgress: (s) => ticks.push(s) });
    expect(r.tasks[0]).toMatchObject({ state: "timed_out", exitCode: 143 });
    expect(ticks[0]).toBe(1); // progress once a second while waiting
  });

  it("cancel ends the whole process tree within the grace period", async () => {
    const w = await running();
    const { taskId } = await runTask(w.slug, ["sh", "-c", "sleep 300 & echo $! > child; trap '' TERM; sleep 301"], { ...w.ctx, cwd: w.dir });
    const dir = taskIoDirOf(w.layout, taskId);
    for (let i = 0; i < 100; i++) {
      try {
        readFileSync(nodePath.join(w.dir, "child"));
        readFileSync(nodePath.join(dir, "pid"));
        break;
      } catch {
        await new Promise((res) => setTimeout(res, 30));
      }
    }
    const child = Number(readFileSync(nodePath.join(w.dir, "child"), "utf8"));
    const leader = Number(readFileSync(nodePath.join(dir, "pid"), "utf8"));
    expect(alive(child)).toBe(true);
    const t0 = Date.now();
    // The leader ignores TERM, so the grace period runs out and KILL follows.
    const r = await cancelTask(w.slug, taskId, { ...w.ctx, graceS: 1 });
    expect(Date.now() - t0).toBeLessThan(2_500);
    expect(r).toMatchObject({ signalled: true, killed: true, task: { state: "cancelled", exitCode: 137 } });
    expect(alive(child)).toBe(false);
    expect(alive(leader)).toBe(false);
    // Cancelling again changes nothing.
    expect(await cancelTask(w.slug, taskId, w.ctx)).toMatchObject({ signalled: false, task: { state: "cancelled" } });
  });

  /** Starts a task whose child leaves its process group and session (setsid, as daemons do); returns the task and the child's pid. */
  async function withEscapee(w: Awaited<ReturnType<typeof running>>, o: { timeoutS?: number } = {}) {
    const { taskId } = await runTask(w.slug, ["sh", "-c", "setsid sh -c 'echo $$ > escaped.tmp; mv escaped.tmp escaped; exec sleep 303' & sleep 302"], { ...w.ctx, cwd: w.dir, ...o });
    let pid = 0;
    for (let i = 0; i < 100 && !pid; i++) {
      try {
        pid = Number(readFileSync(nodePath.join(w.dir, "escaped"), "utf8"));
      } catch {
        await new Promise((res) => setTimeout(res, 30));
      }
    }
    expect(alive(pid)).toBe(true);
    // It really left: another session, so the group signal alone misses it.
    const leader = Number(readFileSync(nodePath.join(taskIoDirOf(w.layout, taskId), "pid"), "utf8"));
    const field = (p: number, n: number) => readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1]!.split(" ")[n];
    expect(field(pid, 3)).not.toBe(field(leader, 3)); // session ids differ
    return { taskId, pid };
  }

  it("cancel also ends a child that left the task's process group and session (setsid)", async () => {
    const w = await running();
    const { taskId, pid } = await withEscapee(w);
    const r = await cancelTask(w.slug, taskId, { ...w.ctx, graceS: 1 });
    expect(r).toMatchObject({ signalled: true, task: { state: "cancelled" } });
    for (let i = 0; i < 50 && alive(pid); i++) await new Promise((res) => setTimeout(res, 20));
    expect(alive(pid)).toBe(false);
  });

  it("the timeout also ends a child that left the task's process group and session", async () => {
    const w = await running();
    const { taskId, pid } = await withEscapee(w, { timeoutS: 1 });
    const r = await taskStatus(w.slug, { ...w.ctx, taskId, waitS: 10 });
    expect(r.tasks[0]).toMatchObject({ state: "timed_out" });
    for (let i = 0; i < 50 && alive(pid); i++) await new Promise((res) => setTimeout(res, 20));
    expect(alive(pid)).toBe(false);
  });

  it("stopping the bottle records its running tasks as cancelled; a task of a bottle that is gone is lost", async () => {
    const w = await running();
    const { taskId } = await runTask(w.slug, ["sh", "-c", "exec sleep 3"], w.ctx);
    await stopBottle(w.slug, w.ctx);
    const r = await taskStatus(w.slug, { ...w.ctx, taskId });
    expect(r.tasks[0]).toMatchObject({ state: "cancelled", reason: "the bottle was stopped while the task ran" });

    const v = await running("web-lost");
    const t = await runTask(v.slug, ["sh", "-c", "exec sleep 3"], v.ctx);
    const meta = JSON.parse(readFileSync(v.layout.metadataFile, "utf8"));
    writeFileSync(v.layout.metadataFile, JSON.stringify({ ...meta, state: "failed" }));
    expect((await taskStatus(v.slug, { ...v.ctx, taskId: t.taskId })).tasks[0]).toMatchObject({ state: "lost", reason: expect.stringContaining("failed") });
  });

  it("keeps only the newest segments of a large output and says how much was cut", async () => {
    const w = await running();
    // 3000 bytes in 100-byte segments: at most 8 segments (800 bytes) are kept.
    const { taskId } = await runTask(w.slug, ["sh", "-c", "i=0; while [ $i -lt 300 ]; do echo 12345678x; i=$((i+1)); done; sleep 1.2"], { ...w.ctx, segmentBytes: 100 });
    const r = await taskStatus(w.slug, { ...w.ctx, taskId, waitS: 10 });
    expect(r.tasks[0]).toMatchObject({ state: "exited", outputBytes: 3000 });
    expect(r.tasks[0]!.outputCut).toBeGreaterThanOrEqual(3000 - 800);
    expect(r.output).toMatchObject({ from: r.tasks[0]!.outputCut, skipped: r.tasks[0]!.outputCut, next: 3000, complete: true });
    expect(r.output!.text.endsWith("12345678x\n")).toBe(true);
  });

  it("a task whose dir the agent replaced with a symlink is failed, and nothing is read through it", async () => {
    const w = await running();
    const { taskId } = await runTask(w.slug, ["sh", "-c", "exec sleep 2"], w.ctx);
    const dir = taskIoDirOf(w.layout, taskId);
    const elsewhere = nodePath.join(w.dir, "elsewhere");
    mkdirSync(elsewhere);
    writeFileSync(nodePath.join(elsewhere, "out.aaaa"), "host data");
    writeFileSync(nodePath.join(elsewhere, "end"), "");
    renameSync(dir, `${dir}.old`);
    symlinkSync(elsewhere, dir);
    const r = await taskStatus(w.slug, { ...w.ctx, taskId });
    expect(r.tasks[0]).toMatchObject({ state: "failed", reason: "the task's dir in the agent was removed or replaced", outputBytes: 0 });
    expect(r.output!.text).toBe("");
  });

  it("runs many tasks in several bottles at once; a long wait never holds up another reader", async () => {
    const a = await running("web-a");
    const b = await running("web-b");
    const ids = await Promise.all(
      Array.from({ length: 12 }, (_, i) => {
        const w = i % 2 ? a : b;
        return runTask(w.slug, ["sh", "-c", `sleep 0.3; echo task-${i}`], w.ctx).then((r) => ({ w, i, id: r.taskId }));
      }),
    );
    const slow = runTask(a.slug, ["sleep", "3"], a.ctx).then((r) => taskStatus(a.slug, { ...a.ctx, taskId: r.taskId, waitS: 2 }));
    const t0 = Date.now();
    const done = await Promise.all(ids.map(({ w, id }) => taskStatus(w.slug, { ...w.ctx, taskId: id, waitS: 10 })));
    expect(Date.now() - t0).toBeLessThan(1_500);
    for (const [n, r] of done.entries()) expect(r.output).toMatchObject({ text: `task-${ids[n]!.i}\n`, complete: true });
    expect((await slow).tasks[0]!.state).toBe("running");
  });

  it("a wait ends early when its request is cancelled", async () => {
    const w = await running();
    const { taskId } = await runTask(w.slug, ["sleep", "3"], w.ctx);
    const t0 = Date.now();
    const r = await taskStatus(w.slug, { ...w.ctx, taskId, waitS: 30, signal: AbortSignal.timeout(200) });
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(r.tasks[0]!.state).toBe("running");
  });

  it("lists every bottle's tasks for the resource list, past a state dir without metadata", async () => {
    const w = await running();
    const { taskId } = await runTask(w.slug, ["true"], w.ctx);
    mkdirSync(nodePath.join(w.root, "aaa-broken"));
    expect(await allTaskRefs(w.ctx)).toEqual([{ slug: w.slug, taskId }]);
  });

  it("feeds stdin from the task dir", async () => {
    const w = await running();
    const { taskId } = await runTask(w.slug, ["sh", "-c", "tr a-z A-Z"], { ...w.ctx, stdin: "shout\n" });
    expect((await taskStatus(w.slug, { ...w.ctx, taskId, waitS: 10 })).output).toMatchObject({ text: "SHOUT\n", complete: true });
  });

  it("a wait finds a task lost when its agent container is no longer running", async () => {
    const w = await running();
    const { taskId } = await runTask(w.slug, ["sh", "-c", "exec sleep 5"], w.ctx);
    const agent = w.engine.projects.get(`bottle-${w.slug}`)!.containers.find((c) => c.service === "agent")!;
    agent.state = "exited";
    const r = await taskStatus(w.slug, { ...w.ctx, taskId, waitS: 10 });
    expect(r.tasks[0]).toMatchObject({ state: "lost", reason: "the agent container is exited" });
    process.kill(-Number(readFileSync(nodePath.join(taskIoDirOf(w.layout, taskId), "pid"), "utf8")), "SIGKILL");
  });

  it("refuses bad input and changes nothing", async () => {
    const w = await running();
    const bad: Array<[() => Promise<unknown>, RegExp]> = [
      [() => runTask(w.slug, [], w.ctx), /argv must name/],
      [() => runTask(w.slug, ["true"], { ...w.ctx, vars: { "A B": "x" } }), /invalid env name/],
      [() => runTask(w.slug, ["true"], { ...w.ctx, cwd: "relative" }), /absolute path/],
      [() => runTask(w.slug, ["true"], { ...w.ctx, timeoutS: 0 }), /timeout_s/],
      [() => taskStatus(w.slug, { ...w.ctx, taskId: "../../etc/passwd" }), /invalid task id/],
      [() => taskStatus(w.slug, { ...w.ctx, taskId: "tabc-123456" }), /has no task/],
      [() => cancelTask(w.slug, "nope", w.ctx), /invalid task id/],
    ];
    for (const [call, re] of bad) await expect(call()).rejects.toThrow(re);
    expect((await taskStatus(w.slug, w.ctx)).tasks).toEqual([]);
    await stopBottle(w.slug, w.ctx);
    await expect(runTask(w.slug, ["true"], w.ctx)).rejects.toMatchObject({ code: "conflict" } satisfies Partial<BottleError>);
  });

  it("a failed start is recorded as failed", async () => {
    const w = await running();
    w.engine.failOn("execDetached", { error: new Error("no such container") });
    await expect(runTask(w.slug, ["true"], w.ctx)).rejects.toThrow(/no such container/);
    expect((await taskStatus(w.slug, w.ctx)).tasks[0]).toMatchObject({ state: "failed", reason: "could not start: no such container" });
  });
});

describe("reading output segments", () => {
  const seg = 10;
  function taskDir(files: Record<string, string | Buffer>) {
    const w = world();
    const layout = layoutOf(w.root, "seg");
    const dir = taskIoDirOf(layout, "t1-000000");
    mkdirSync(dir, { recursive: true });
    for (const [name, content] of Object.entries(files)) writeFileSync(nodePath.join(dir, name), content);
    return { layout, dir, w };
  }

  it("reads across segments from a cursor, and says what was cut", async () => {
    // Segments 0 and 1 were trimmed: the stream starts at byte 20.
    const { layout } = taskDir({ "out.aaac": "cccccccccc", "out.aaad": "dddd" });
    expect(await readOutput(layout, "t1-000000", seg, 0, 100, true)).toEqual({ from: 20, next: 34, skipped: 20, text: "ccccccccccdddd", complete: true });
    expect(await readOutput(layout, "t1-000000", seg, 25, 7, false)).toEqual({ from: 25, next: 32, skipped: 0, text: "cccccdd", complete: false });
    expect(await readOutput(layout, "t1-000000", seg, 34, 7, false)).toEqual({ from: 34, next: 34, skipped: 0, text: "", complete: false });
  });

  it("never splits a UTF-8 character at the end of a chunk", async () => {
    const { layout } = taskDir({ "out.aaaa": Buffer.from("aé€😀") });
    const r = await readOutput(layout, "t1-000000", 100, 0, 4, false);
    expect(r).toMatchObject({ text: "aé", next: 3 });
    expect((await readOutput(layout, "t1-000000", 100, r.next, 4, false)).text).toBe("€");
    expect(utf8Boundary(Buffer.from("😀").subarray(0, 3))).toBe(0);
    expect(utf8Boundary(Buffer.from("ab"))).toBe(2);
  });

  it("does not follow a segment the agent replaced with a symlink", async () => {
    const { layout, dir, w } = taskDir({ "out.aaaa": "x" });
    const secret = nodePath.join(w.dir, "host-secret");
    writeFileSync(secret, "host secret");
    unlinkSync(nodePath.join(dir, "out.aaaa"));
    symlinkSync(secret, nodePath.join(dir, "out.aaaa"));
    await expect(readOutput(layout, "t1-000000", seg, 0, 100, true)).rejects.toThrow(/ELOOP|symbolic/);
  });
});
