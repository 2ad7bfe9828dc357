// An orchestrator that gives up: a cancelled or timed-out bottle_exec, a
// client that hangs up in the middle of bottle_start or of a bottle_task
// wait. Nothing may be left running that nobody waits for, and the server
// must neither die early nor linger.
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { CallToolResultSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeDocker } from "../helpers/docker.js";
import { connectServer } from "../helpers/mcp.js";

const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-audit-cancel-"));
const manifest = nodePath.join(dir, "bottle.yaml");
writeFileSync(
  manifest,
  "version: 1\nagents:\n  ac:\n    image: node:24-bookworm-slim\n    network: { allow: [allowed.test] }\n  acp:\n    image: node:24-bookworm-slim\n    pool: 1\n    network: { allow: [allowed.test] }\n",
);
const env = { BOTTLE_MANIFEST: manifest, BOTTLE_STATE_DIR: nodePath.join(dir, "state"), BOTTLE_SUBNET_POOL: "10.243.0.0/16" };
const tag = process.pid.toString(16).slice(-4);
const slug = `acx-${tag}`;
const dockerObjects = (s: string) =>
  execFileSync("sh", ["-c", `docker ps -aq --filter label=dev.bot-bottle.slug=${s}; docker network ls -q --filter label=dev.bot-bottle.slug=${s}`])
    .toString()
    .trim();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describeDocker("audit: cancellation and disconnects over MCP stdio", () => {
  let client: Client;
  const started: string[] = [];
  const call = async (name: string, args: Record<string, unknown>) => {
    const r = await client.callTool({ name, arguments: args }, undefined, { timeout: 120_000 });
    if (r.isError) throw new Error(`${name}: ${(r.content as Array<{ text: string }>)[0]!.text}`);
    return r.structuredContent as Record<string, unknown>;
  };
  /** Processes in the agent whose command line contains `marker`. */
  const inAgent = async (marker: string) => {
    const r = await call("bottle_exec", { slug, argv: ["sh", "-c", `for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f 2>/dev/null; echo; done | grep -F -- '${marker}' | grep -v grep || true`] });
    return String(r.stdout).split("\n").filter(Boolean);
  };

  beforeAll(async () => {
    client = (await connectServer(env)).client;
    await call("bottle_start", { profile: "ac", slug });
    started.push(slug);
  }, 120_000);
  afterAll(async () => {
    const c = client ?? (await connectServer(env)).client;
    for (const s of started) await c.callTool({ name: "bottle_stop", arguments: { slug: s, purge: true } }).catch(() => {});
    await c.callTool({ name: "bottle_cleanup", arguments: { purge: true } }).catch(() => {});
    await c.close();
  });

  it("a cancelled bottle_exec kills its command (and what it started) in the agent", async () => {
    const ac = new AbortController();
    const pending = client
      .request({ method: "tools/call", params: { name: "bottle_exec", arguments: { slug, argv: ["sh", "-c", "sleep 301 & sleep 302; echo never"] } } }, CallToolResultSchema, {
        signal: ac.signal,
        timeout: 60_000,
      })
      .then(
        () => "resolved",
        (e: Error) => e.message,
      );
    for (let i = 0; i < 50 && (await inAgent("sleep 302")).length === 0; i++) await sleep(100);
    expect((await inAgent("sleep 302")).length).toBeGreaterThan(0);
    ac.abort("orchestrator gave up");
    expect(await pending).toMatch(/abort|gave up/i);
    let left: string[] = [];
    for (let i = 0; i < 30; i++) {
      left = await inAgent("sleep 30");
      if (!left.length) break;
      await sleep(200);
    }
    expect(left).toEqual([]);
  });

  it("a timed-out bottle_exec says so and leaves nothing running", async () => {
    const r = await call("bottle_exec", { slug, argv: ["sh", "-c", "sleep 303 & sleep 304"], timeout_ms: 1_500 });
    expect(r).toMatchObject({ timedOut: true, exitCode: 124 });
    expect(await inAgent("sleep 30")).toEqual([]);
  });

  it("a client that hangs up during bottle_start leaves no containers, networks or locks behind", async () => {
    const s = `acs-${tag}`;
    const c = await connectServer(env);
    started.push(s);
    let hungUp: Promise<void> | undefined;
    const result = c.client
      .request({ method: "tools/call", params: { name: "bottle_start", arguments: { profile: "ac", slug: s }, _meta: { progressToken: "s" } } }, CallToolResultSchema, {
        timeout: 120_000,
        // Hang up as soon as containers are being created: the worst moment.
        onprogress: (p) => {
          if (String(p.message).startsWith("up:")) hungUp ??= c.client.close();
        },
      })
      .then(
        () => "finished",
        (e: Error) => e.message,
      );
    expect(await result).toMatch(/Connection closed/);
    await hungUp;
    // The SDK client gives the server 2 s after stdin ends, then SIGTERM, then SIGKILL 2 s later.
    expect(dockerObjects(s)).toBe("");
    const list = (await call("bottle_list", {})) as { bottles: Array<{ slug: string; state: string }> };
    expect(list.bottles.find((b) => b.slug === s)?.state).toBe("failed");
    // The slug is free again: no stale lock.
    const again = await client.callTool({ name: "bottle_start", arguments: { profile: "ac", slug: s } }, undefined, { timeout: 120_000 });
    expect(again.isError, JSON.stringify(again.content)).toBeFalsy();
    await call("bottle_stop", { slug: s, purge: true });
  });

  it("a bottle_start the client cancels, or a server told to stop (SIGTERM) mid-start, rolls back and frees the slug", async () => {
    for (const how of ["cancel", "sigterm"] as const) {
      const s = `ac${how[0]}-${tag}`;
      const c = await connectServer(env);
      started.push(s);
      const ac = new AbortController();
      const pid = (c.transport as unknown as { pid: number }).pid;
      const result = c.client
        .request({ method: "tools/call", params: { name: "bottle_start", arguments: { profile: "ac", slug: s }, _meta: { progressToken: "s" } } }, CallToolResultSchema, {
          timeout: 120_000,
          signal: ac.signal,
          onprogress: (p) => {
            if (!String(p.message).startsWith("up:")) return;
            if (how === "cancel") ac.abort("changed my mind");
            else process.kill(pid, "SIGTERM");
          },
        })
        .then(
          () => "finished",
          (e: Error) => e.message,
        );
      expect(await result).toMatch(how === "cancel" ? /changed my mind|abort/i : /Connection closed/);
      // The cancelled start's response never comes; its rollback is done once the slug is free.
      let state: string | undefined;
      for (let i = 0; i < 100; i++) {
        state = ((await call("bottle_list", {})) as { bottles: Array<{ slug: string; state: string }> }).bottles.find((b) => b.slug === s)?.state;
        if (state !== "starting") break;
        await sleep(100);
      }
      expect(state, how).toBe("failed");
      expect(dockerObjects(s), how).toBe("");
      await c.client.close();
    }
  });

  it("a client that hangs up while the server refills a warm pool leaves no half-started pooled bottle", async () => {
    const s = `acp-${tag}`;
    const c = await connectServer(env);
    const r = await c.client.callTool({ name: "bottle_start", arguments: { profile: "acp", slug: s } }, undefined, { timeout: 120_000 });
    expect(r.isError, JSON.stringify(r.content)).toBeFalsy();
    // The refill started when the start returned: hang up once its pooled bottle is on its way.
    const starting = async () => ((await call("bottle_list", {})) as { bottles: Array<{ slug: string; state: string }> }).bottles.some((b) => b.slug.startsWith("pool-") && b.state === "starting");
    for (let i = 0; i < 200 && !(await starting()); i++) await sleep(25);
    await c.client.close();
    const list = (await call("bottle_list", {})) as { bottles: Array<{ slug: string; state: string; detail?: string }> };
    const pool = list.bottles.filter((b) => b.slug.startsWith("pool-"));
    started.push(s, ...pool.map((b) => b.slug));
    expect(pool.length).toBeGreaterThan(0);
    for (const b of pool) {
      expect(["pooled", "failed"], JSON.stringify(b)).toContain(b.state);
      if (b.state === "failed") expect(dockerObjects(b.slug)).toBe("");
    }
  });

  it("a client that hangs up during a bottle_task wait: the server exits, the task runs on and is read later", async () => {
    const c = await connectServer(env);
    const pid = (c.transport as unknown as { pid: number }).pid;
    const run = await c.client.callTool({ name: "bottle_run", arguments: { slug, argv: ["sh", "-c", "sleep 3; echo survived"] } });
    const taskId = (run.structuredContent as { taskId: string }).taskId;
    const wait = c.client.callTool({ name: "bottle_task", arguments: { slug, task_id: taskId, wait_s: 60 } }, undefined, { timeout: 90_000 }).then(
      () => "finished",
      (e: Error) => e.message,
    );
    await sleep(500);
    const t0 = Date.now();
    await c.client.close();
    expect(await wait).toMatch(/Connection closed/);
    expect(alive(pid)).toBe(false);
    expect(Date.now() - t0).toBeLessThan(2_500); // exited on stdin end, not killed by the client's SIGTERM
    const done = await call("bottle_task", { slug, task_id: taskId, wait_s: 30 });
    expect((done.tasks as Array<{ state: string }>)[0]!.state).toBe("exited");
    expect((done.output as { text: string }).text).toContain("survived");
  });
});
