// Tasks through the real MCP client over stdio, on real Docker: run, read by
// cursor, wait, cancel a process tree, the end notification, the CLI's JSON,
// and durability across a killed server.
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { promisify } from "node:util";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { CallToolResultSchema, ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeDocker } from "../helpers/docker.js";
import { CLI, connectServer } from "../helpers/mcp.js";

const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-tasks-"));
const manifest = nodePath.join(dir, "bottle.yaml");
writeFileSync(manifest, "version: 1\nagents:\n  tasks:\n    image: node:24-bookworm-slim\n    network: { allow: [allowed.test] }\n");
const slug = `tasks-${process.pid.toString(16).slice(-4)}`;
const env = { BOTTLE_MANIFEST: manifest, BOTTLE_STATE_DIR: nodePath.join(dir, "state"), BOTTLE_SUBNET_POOL: "10.217.0.0/16" };

interface Task {
  taskId: string;
  state: string;
  exitCode?: number;
  reason?: string;
}
interface TaskOut {
  tasks: Task[];
  output?: { from: number; next: number; skipped: number; text: string; complete: boolean };
}

describeDocker("tasks over MCP stdio", () => {
  let client: Client;
  const call = async <T>(name: string, args: Record<string, unknown>): Promise<T> => {
    const r = await client.callTool({ name, arguments: args }, undefined, { timeout: 120_000 });
    if (r.isError) throw new Error(`${name}: ${(r.content as Array<{ text: string }>)[0]!.text}`);
    return r.structuredContent as T;
  };
  const run = (argv: string[], extra: Record<string, unknown> = {}) => call<{ taskId: string }>("bottle_run", { slug, argv, ...extra }).then((r) => r.taskId);
  const task = (task_id: string, extra: Record<string, unknown> = {}) => call<TaskOut>("bottle_task", { slug, task_id, ...extra });
  const procs = async () => {
    const r = await call<{ stdout: string }>("bottle_exec", { slug, argv: ["sh", "-c", "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f 2>/dev/null; echo; done"] });
    return r.stdout.split("\n");
  };

  beforeAll(async () => {
    client = (await connectServer(env)).client;
    const r = await client.callTool({ name: "bottle_start", arguments: { profile: "tasks", slug } }, undefined, { timeout: 300_000 });
    expect(r.isError).toBeFalsy();
  }, 320_000);
  afterAll(async () => {
    await client?.callTool({ name: "bottle_stop", arguments: { slug } }).catch(() => {});
    await client?.close();
  });

  it("runs a task: running at once, incremental reads by cursor, waits to the end with progress, notifies subscribers", async () => {
    const updated: string[] = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updated.push(n.params.uri));
    const t0 = Date.now();
    const id = await run(["sh", "-c", 'echo "first $GREETING"; pwd; sleep 3; echo second; exit 4'], { env: { GREETING: "hello" }, cwd: "/tmp" });
    const runMs = Date.now() - t0;
    const uri = `bottle://${slug}/tasks/${id}`;
    await client.subscribeResource({ uri });
    const first = await task(id);
    expect(first.tasks[0]).toMatchObject({ taskId: id, state: "running" });

    let r = first;
    for (let i = 0; i < 40 && !r.output!.text.includes("/tmp\n"); i++) {
      await new Promise((res) => setTimeout(res, 100));
      r = await task(id);
    }
    expect(r.output).toMatchObject({ from: 0, text: "first hello\n/tmp\n", complete: false });
    const progress: string[] = [];
    const done = await client.request(
      { method: "tools/call", params: { name: "bottle_task", arguments: { slug, task_id: id, wait_s: 20, output_from: r.output!.next }, _meta: { progressToken: "w1" } } },
      CallToolResultSchema,
      {
        onprogress: (p) => progress.push(String(p.message)),
        timeout: 60_000,
      },
    );
    const end = done.structuredContent as unknown as TaskOut;
    expect(end.tasks[0]).toMatchObject({ state: "failed", exitCode: 4 });
    expect(end.output).toMatchObject({ from: r.output!.next, text: "second\n", complete: true });
    expect(progress.length).toBeGreaterThan(0);
    for (let i = 0; i < 20 && !updated.includes(uri); i++) await new Promise((res) => setTimeout(res, 100));
    expect(updated).toContain(uri);

    // The resource: listed, completed, readable.
    const { resources } = await client.listResources();
    expect(resources.map((x) => x.uri)).toContain(uri);
    const text = await client.readResource({ uri });
    expect((text.contents[0] as { text: string }).text).toBe("first hello\n/tmp\nsecond\n");
    const c = await client.complete({ ref: { type: "ref/resource", uri: "bottle://{slug}/tasks/{task_id}" }, argument: { name: "task_id", value: id.slice(0, 3) }, context: { arguments: { slug } } });
    expect(c.completion.values).toContain(id);

    // The CLI prints the same JSON.
    const cli = await promisify(execFile)(process.execPath, [CLI, "task", slug, id, "--from", "5", "--json"], { env: { ...process.env, ...env }, timeout: 30_000 });
    expect(JSON.parse(cli.stdout)).toEqual(await task(id, { output_from: 5 }));

    // bottle_logs with task_id: the task's lines in its timeline (task-timeline.test.ts has the decisions).
    const tl = await call<{ task: { taskId: string; state: string }; timeline: Array<{ source: string; text: string }> }>("bottle_logs", { slug, task_id: id });
    expect(tl.task).toMatchObject({ taskId: id, state: "failed" });
    expect(tl.timeline.filter((e) => e.source === "task").map((e) => e.text)).toEqual(["first hello", "/tmp", "second"]);
    console.info(`bottle_run round trip ${runMs} ms`);
  }, 120_000);

  it("cancel ends the whole process tree within grace + 1 s, a child that left by setsid too", async () => {
    // The leader ignores TERM (so KILL must follow); its background child does not;
    // another child left the group and session as a daemon does.
    const id = await run(["sh", "-c", "sleep 300 & setsid sleep 303 & trap '' TERM; sleep 301"]);
    for (let i = 0; i < 50 && (await procs()).filter((l) => /^sleep 30[013]/.test(l)).length < 3; i++) await new Promise((res) => setTimeout(res, 100));
    expect((await procs()).filter((l) => /^sleep 30[013]/.test(l))).toHaveLength(3);
    const t0 = Date.now();
    const r = await call<{ task: Task; signalled: boolean; killed: boolean }>("bottle_cancel", { slug, task_id: id, grace_s: 1 });
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(r).toMatchObject({ signalled: true, killed: true, task: { state: "cancelled", exitCode: 137 } });
    expect((await procs()).filter((l) => /^sleep 30[013]/.test(l))).toEqual([]);
  }, 60_000);

  it("a task outlives the server that started it", async () => {
    const a = await connectServer(env);
    const r = await a.client.callTool({ name: "bottle_run", arguments: { slug, argv: ["sh", "-c", "echo before; sleep 3; echo after"] } });
    const id = (r.structuredContent as { taskId: string }).taskId;
    process.kill(a.transport.pid!, "SIGKILL");
    await a.client.close().catch(() => {});
    const b = await connectServer(env);
    try {
      const w = await b.client.callTool({ name: "bottle_task", arguments: { slug, task_id: id, wait_s: 30 } }, undefined, { timeout: 60_000 });
      expect(w.structuredContent).toMatchObject({ tasks: [{ taskId: id, state: "exited", exitCode: 0 }], output: { text: "before\nafter\n", complete: true } });
    } finally {
      await b.client.close();
    }
  }, 60_000);

  it("lists tasks newest first; stopping the bottle records a running task as cancelled", async () => {
    const id = await run(["sleep", "300"]);
    const all = await call<TaskOut>("bottle_task", { slug });
    expect(all.tasks[0]!.taskId).toBe(id);
    expect(all.tasks.length).toBe(4);
    // The CLI's run and cancel print the tools' JSON.
    const cli = (...args: string[]) => promisify(execFile)(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 30_000 }).then((r) => JSON.parse(r.stdout));
    const started = await cli("run", slug, "--json", "--", "sleep", "300");
    expect(started).toEqual({ taskId: expect.any(String), slug, startedAt: expect.any(String) });
    expect(await cli("cancel", slug, started.taskId, "--grace", "0", "--json")).toMatchObject({ signalled: true, task: { taskId: started.taskId, state: "cancelled" } });
    await call("bottle_stop", { slug });
    expect((await task(id)).tasks[0]).toMatchObject({ state: "cancelled", reason: "the bottle was stopped while the task ran" });
    expect((await client.callTool({ name: "bottle_run", arguments: { slug, argv: ["true"] } })).isError).toBe(true);
  }, 60_000);
});
