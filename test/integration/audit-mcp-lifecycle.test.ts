// Lifecycle races and odd orders, driven like an orchestrator would over
// stdio on real Docker: the same slug started twice at once, a start while a
// stop runs, stop twice, every tool on a stopped bottle, a wait on a task
// whose bottle is stopped, and a server killed in the middle of a start.
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { CallToolResultSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeDocker } from "../helpers/docker.js";
import { connectServer } from "../helpers/mcp.js";

const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-audit-life-"));
const manifest = nodePath.join(dir, "bottle.yaml");
writeFileSync(
  manifest,
  "version: 1\nagents:\n  al:\n    image: node:24-bookworm-slim\n    network: { allow: [allowed.test] }\n  alp:\n    image: node:24-bookworm-slim\n    pool: 1\n    network: { allow: [allowed.test] }\n",
);
const env = { BOTTLE_MANIFEST: manifest, BOTTLE_STATE_DIR: nodePath.join(dir, "state"), BOTTLE_SUBNET_POOL: "10.245.0.0/16" };
const tag = process.pid.toString(16).slice(-4);
const text = (r: unknown) => ((r as { content?: Array<{ text?: string }> }).content ?? []).map((c) => c.text ?? "").join("\n");
/** Container names (with state) and network names Docker has for a slug. */
const dockerOf = (s: string) =>
  execFileSync("sh", ["-c", `docker ps -a --filter label=dev.bot-bottle.slug=${s} --format '{{.Names}} {{.State}}'; docker network ls --filter label=dev.bot-bottle.slug=${s} --format '{{.Name}}'`])
    .toString()
    .split("\n")
    .filter(Boolean)
    .sort();
const RUNNING = (s: string) => [`bottle-${s}-egress`, `bottle-${s}-internal`, `bottle-agent-${s} running`, `bottle-firewall-${s} running`].sort();
const BUSY = /is busy: another operation .* holds its lock|already exists/;

describeDocker("audit: lifecycle races and odd orders over MCP stdio", () => {
  let client: Client;
  const slugs: string[] = [];
  const call = (name: string, args: Record<string, unknown>) => client.callTool({ name, arguments: args }, undefined, { timeout: 120_000 });
  const ok = async (name: string, args: Record<string, unknown>) => {
    const r = await call(name, args);
    expect(r.isError, `${name}: ${text(r)}`).toBeFalsy();
    return r.structuredContent as Record<string, unknown>;
  };
  const stateOf = async (s: string) => ((await ok("bottle_list", {})).bottles as Array<{ slug: string; state: string; detail?: string }>).find((b) => b.slug === s);

  beforeAll(async () => {
    client = (await connectServer(env)).client;
    await client.listTools(); // the client validates every structuredContent from here on
  });
  afterAll(async () => {
    for (const s of slugs) await client?.callTool({ name: "bottle_stop", arguments: { slug: s, purge: true } }).catch(() => {});
    await client?.callTool({ name: "bottle_cleanup", arguments: { purge: true } }).catch(() => {});
    await client?.close();
  });

  it("the same slug started twice at once: one bottle, the other start is refused and leaves nothing", async () => {
    const slug = `ala-${tag}`;
    slugs.push(slug);
    const rs = await Promise.all([call("bottle_start", { profile: "al", slug }), call("bottle_start", { profile: "al", slug }), call("bottle_start", { profile: "al", slug })]);
    expect(rs.filter((r) => !r.isError)).toHaveLength(1);
    for (const r of rs.filter((x) => x.isError)) expect(text(r)).toMatch(BUSY);
    expect(dockerOf(slug)).toEqual(RUNNING(slug));
    expect((await stateOf(slug))?.state).toBe("running");
  });

  it("stop twice at once, a start while a stop runs, stop again: each answer is success or 'busy', and what Docker has matches the recorded state", async () => {
    const slug = `ala-${tag}`;
    const rs = await Promise.all([call("bottle_stop", { slug }), call("bottle_stop", { slug }), new Promise((r) => setTimeout(r, 150)).then(() => call("bottle_start", { profile: "al", slug }))]);
    for (const r of rs) if (r.isError) expect(text(r)).toMatch(BUSY);
    expect(rs.slice(0, 2).filter((r) => !r.isError).length).toBeGreaterThanOrEqual(1);
    const state = (await stateOf(slug))?.state;
    expect(["running", "stopped"]).toContain(state);
    expect(dockerOf(slug)).toEqual(state === "running" ? RUNNING(slug) : []);
    expect(await ok("bottle_stop", { slug })).toMatchObject({ state: "stopped" });
    expect(await ok("bottle_stop", { slug })).toMatchObject({ state: "stopped", wasState: "stopped" });
    expect(dockerOf(slug)).toEqual([]);
  });

  it("a bottle_task wait on a task whose bottle is stopped ends at once, cancelled, saying why", async () => {
    const slug = `alw-${tag}`;
    slugs.push(slug);
    await ok("bottle_start", { profile: "al", slug });
    const { taskId } = (await ok("bottle_run", { slug, argv: ["sleep", "300"] })) as { taskId: string };
    const done = (await ok("bottle_run", { slug, argv: ["sh", "-c", "echo done"] })) as { taskId: string };
    await ok("bottle_task", { slug, task_id: done.taskId, wait_s: 20 });
    const t0 = Date.now();
    const wait = client.request({ method: "tools/call", params: { name: "bottle_task", arguments: { slug, task_id: taskId, wait_s: 120 }, _meta: { progressToken: "w" } } }, CallToolResultSchema, {
      timeout: 150_000,
      onprogress: () => {},
    });
    await new Promise((r) => setTimeout(r, 700));
    await ok("bottle_stop", { slug });
    const r = await wait;
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(r.isError).toBeFalsy();
    expect((r.structuredContent as { tasks: Array<{ state: string; reason?: string }> }).tasks[0]).toMatchObject({ state: "cancelled", reason: expect.stringMatching(/stopped/) });

    // Everything on the stopped bottle: a clear refusal, or what was saved.
    for (const [name, args, re] of [
      ["bottle_exec", { slug, argv: ["true"] }, /is stopped, not running\nStart it with bottle_start first/],
      ["bottle_run", { slug, argv: ["true"] }, /is stopped, not running/],
      ["bottle_decide", { slug, id: "p1", verdict: "approve" }, /has no proposal "p1"/],
      ["bottle_git_log", { slug }, /has no git gate/],
      ["bottle_task", { slug, task_id: "tabc-123456" }, /has no task "tabc-123456"/],
    ] as const) {
      const res = await call(name, args);
      expect(res.isError, name).toBe(true);
      expect(text(res), name).toMatch(re);
    }
    expect(await ok("bottle_logs", { slug, service: "firewall" })).toMatchObject({ source: "file" });
    expect(((await ok("bottle_task", { slug })).tasks as unknown[]).length).toBe(2);
    // Cancelling a task that already ended leaves it as it was.
    expect(await ok("bottle_cancel", { slug, task_id: done.taskId })).toMatchObject({ signalled: false, killed: false, task: { state: "exited", exitCode: 0 } });
    expect(await ok("bottle_cancel", { slug, task_id: taskId })).toMatchObject({ signalled: false, task: { state: "cancelled" } });
    const meta = await client.readResource({ uri: `bottle://${slug}/metadata` });
    expect(JSON.parse((meta.contents[0] as { text: string }).text)).toMatchObject({ slug, state: "stopped" });
  });

  it("an agent container that went away: exec and run say so (not a command's exit 1), list says degraded, stop still cleans up", async () => {
    const slug = `alg-${tag}`;
    slugs.push(slug);
    await ok("bottle_start", { profile: "al", slug });
    execFileSync("docker", ["kill", `bottle-agent-${slug}`], { stdio: "ignore" });
    const ex = await call("bottle_exec", { slug, argv: ["true"] });
    expect(ex.isError, JSON.stringify(ex)).toBe(true);
    expect(text(ex)).toMatch(/is not running[\s\S]*bottle_stop then bottle_start/);
    const run = await call("bottle_run", { slug, argv: ["true"] });
    expect(run.isError).toBe(true);
    expect(text(run)).toContain("is not running");
    expect((await stateOf(slug))?.state).toBe("degraded");
    expect(await ok("bottle_stop", { slug })).toMatchObject({ state: "stopped" });
    expect(dockerOf(slug)).toEqual([]);
  });

  it("a pooled bottle (waiting in the warm pool) refuses exec, run, logs and decisions, and names the way forward", async () => {
    const slug = `alp-${tag}`;
    slugs.push(slug);
    await ok("bottle_start", { profile: "alp", slug });
    let pooled: string | undefined;
    for (let i = 0; i < 150 && !pooled; i++) {
      pooled = ((await ok("bottle_list", {})).bottles as Array<{ slug: string; state: string }>).find((b) => b.state === "pooled")?.slug;
      if (!pooled) await new Promise((r) => setTimeout(r, 200));
    }
    expect(pooled).toBeDefined();
    slugs.push(pooled!);
    for (const [name, args] of [
      ["bottle_exec", { slug: pooled, argv: ["true"] }],
      ["bottle_run", { slug: pooled, argv: ["true"] }],
      ["bottle_logs", { slug: pooled }],
      ["bottle_decide", { slug: pooled, id: "p1", verdict: "approve" }],
      ["bottle_git_log", { slug: pooled }],
    ] as const) {
      const r = await call(name, args);
      expect(r.isError, name).toBe(true);
      expect(text(r), name).toMatch(/waiting in the warm pool of profile "alp"|has no git gate|has no proposal "p1"/);
    }
    await expect(client.readResource({ uri: `bottle://${pooled}/logs` })).rejects.toThrow(/warm pool/);
    // Stopping it drains it: the next start of the profile starts cold (and refills).
    expect(await ok("bottle_stop", { slug: pooled!, purge: true })).toMatchObject({ state: "purged" });
    expect(dockerOf(pooled!)).toEqual([]);
  });

  it("a server killed in the middle of a start: the next one lists the bottle as orphaned, cleanup removes it, the slug starts again", async () => {
    const slug = `alk-${tag}`;
    slugs.push(slug);
    const doomed = await connectServer(env);
    const pid = (doomed.transport as unknown as { pid: number }).pid;
    const start = doomed.client
      .request({ method: "tools/call", params: { name: "bottle_start", arguments: { profile: "al", slug }, _meta: { progressToken: "k" } } }, CallToolResultSchema, {
        timeout: 120_000,
        onprogress: (p) => {
          if (String(p.message).startsWith("up:")) process.kill(pid, "SIGKILL");
        },
      })
      .then(
        () => "finished",
        (e: Error) => e.message,
      );
    expect(await start).toMatch(/Connection closed/);
    const orphan = await stateOf(slug);
    expect(orphan).toMatchObject({ state: "orphaned", detail: expect.stringContaining(`(pid ${pid}) is gone`) });
    const refused = await call("bottle_start", { profile: "al", slug });
    expect(refused.isError).toBe(true);
    expect(text(refused)).toContain(`bottle_stop ${slug}`);
    const cleaned = await ok("bottle_cleanup", {});
    expect((cleaned.removed as Array<{ slug: string }>).map((r) => r.slug)).toContain(slug);
    expect(dockerOf(slug)).toEqual([]);
    expect(await ok("bottle_start", { profile: "al", slug })).toMatchObject({ slug, state: "running" });
    expect(dockerOf(slug)).toEqual(RUNNING(slug));
    await ok("bottle_stop", { slug, purge: true });
    expect(dockerOf(slug)).toEqual([]);
  });
});
