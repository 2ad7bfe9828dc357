// Notifications and resources as an orchestrator uses them, on real Docker:
// progress during a bottle_task wait that stops on the wire when the client
// cancels, resources/updated when a subscribed task ends (and none after
// unsubscribing), resource listing, templates, completion and reads.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { CallToolResultSchema, type McpError, ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeDocker } from "../helpers/docker.js";
import { connectServer } from "../helpers/mcp.js";

const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-audit-notify-"));
const manifest = nodePath.join(dir, "bottle.yaml");
writeFileSync(manifest, "version: 1\nagents:\n  an:\n    image: node:24-bookworm-slim\n    network: { allow: [allowed.test] }\n");
const env = { BOTTLE_MANIFEST: manifest, BOTTLE_STATE_DIR: nodePath.join(dir, "state"), BOTTLE_SUBNET_POOL: "10.246.0.0/16" };
const slug = `an-${process.pid.toString(16).slice(-4)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeDocker("audit: notifications and resources over MCP stdio", () => {
  let client: Client;
  const wire: Array<{ at: number; msg: JSONRPCMessage }> = [];
  const clientErrors: string[] = [];
  const ok = async (name: string, args: Record<string, unknown>) => {
    const r = await client.callTool({ name, arguments: args }, undefined, { timeout: 120_000 });
    expect(r.isError, JSON.stringify(r.content)).toBeFalsy();
    return r.structuredContent as Record<string, unknown>;
  };
  const run = async (argv: string[]) => String((await ok("bottle_run", { slug, argv })).taskId);

  beforeAll(async () => {
    const c = await connectServer(env);
    client = c.client;
    // Everything the server sends, as it arrives.
    const inner = c.transport.onmessage!;
    c.transport.onmessage = (msg: JSONRPCMessage) => {
      wire.push({ at: Date.now(), msg });
      inner(msg);
    };
    client.onerror = (e) => void clientErrors.push(e.message);
    await client.listTools();
    await ok("bottle_start", { profile: "an", slug });
  }, 120_000);
  afterAll(async () => {
    await client?.callTool({ name: "bottle_stop", arguments: { slug, purge: true } }).catch(() => {});
    await client?.close();
  });

  it("a bottle_task wait sends progress, and none after the client cancels it", async () => {
    const id = await run(["sleep", "60"]);
    const ac = new AbortController();
    const progress: number[] = [];
    const wait = client
      .request({ method: "tools/call", params: { name: "bottle_task", arguments: { slug, task_id: id, wait_s: 50 }, _meta: { progressToken: "audit-w" } } }, CallToolResultSchema, {
        signal: ac.signal,
        timeout: 90_000,
        onprogress: (p) => void progress.push(p.progress),
      })
      .then(
        () => "finished",
        (e: Error) => e.message,
      );
    await sleep(3_500);
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress).toEqual([...progress].sort((a, b) => a - b)); // monotonic
    ac.abort("done waiting");
    const cancelledAt = Date.now();
    expect(await wait).toMatch(/abort|done waiting/i);
    await sleep(3_000);
    // The SDK client puts the request's own id in as the token: find it from what arrived before the cancel.
    const tokenOf = (w: { msg: JSONRPCMessage }) => ("method" in w.msg && w.msg.method === "notifications/progress" ? (w.msg.params as { progressToken?: unknown }).progressToken : undefined);
    const before = wire.filter((w) => w.at < cancelledAt && tokenOf(w) !== undefined);
    expect(before.length).toBe(progress.length); // the wire tap sees them
    const token = tokenOf(before[0]!);
    expect(wire.filter((w) => w.at > cancelledAt + 300 && tokenOf(w) === token)).toEqual([]);
    expect(clientErrors.filter((e) => /progress/i.test(e))).toEqual([]);
    // The task itself is untouched by a cancelled wait.
    expect(((await ok("bottle_task", { slug, task_id: id })).tasks as Array<{ state: string }>)[0]!.state).toBe("running");
    await ok("bottle_cancel", { slug, task_id: id, grace_s: 1 });
  });

  it("resources/updated when a subscribed task ends, once; none for a task unsubscribed from", async () => {
    const updated: string[] = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updated.push(n.params.uri));
    const a = await run(["sh", "-c", "sleep 1; echo a"]);
    const b = await run(["sh", "-c", "sleep 1; echo b"]);
    const ua = `bottle://${slug}/tasks/${a}`;
    const ub = `bottle://${slug}/tasks/${b}`;
    await client.subscribeResource({ uri: ua });
    await client.subscribeResource({ uri: ub });
    await client.unsubscribeResource({ uri: ub });
    for (let i = 0; i < 40 && !updated.includes(ua); i++) await sleep(250);
    await sleep(1_500);
    expect(updated).toEqual([ua]);
    const read = await client.readResource({ uri: ua });
    expect((read.contents[0] as { text: string }).text).toBe("a\n");
  });

  it("lists, templates, completion and reads work; a bad read is an MCP error the session survives", async () => {
    const id = await run(["sh", "-c", "echo listed"]);
    await ok("bottle_task", { slug, task_id: id, wait_s: 20 });
    const { resources } = await client.listResources();
    const uris = resources.map((r) => r.uri);
    for (const kind of ["logs", "compose", "metadata", "proposals"]) expect(uris).toContain(`bottle://${slug}/${kind}`);
    expect(uris).toContain(`bottle://${slug}/tasks/${id}`);
    const { resourceTemplates } = await client.listResourceTemplates();
    expect(resourceTemplates).toHaveLength(5);
    const slugs = await client.complete({ ref: { type: "ref/resource", uri: "bottle://{slug}/tasks/{task_id}" }, argument: { name: "slug", value: slug.slice(0, 3) } });
    expect(slugs.completion.values).toContain(slug);
    const ids = await client.complete({
      ref: { type: "ref/resource", uri: "bottle://{slug}/tasks/{task_id}" },
      argument: { name: "task_id", value: id.slice(0, 3) },
      context: { arguments: { slug } },
    });
    expect(ids.completion.values).toContain(id);
    const none = await client.complete({
      ref: { type: "ref/resource", uri: "bottle://{slug}/tasks/{task_id}" },
      argument: { name: "task_id", value: "" },
      context: { arguments: { slug: "no-such" } },
    });
    expect(none.completion.values).toEqual([]);
    for (const kind of ["logs", "compose", "metadata", "proposals"]) {
      const r = await client.readResource({ uri: `bottle://${slug}/${kind}` });
      expect((r.contents[0] as { text: string }).text.length, kind).toBeGreaterThan(0);
    }
    const bad = async (uri: string) =>
      client.readResource({ uri }).then(
        () => undefined,
        (e: unknown) => e as McpError,
      );
    expect((await bad(`bottle://${slug}/tasks/tzzz-000000`))?.code).toBe(-32002);
    expect((await bad(`bottle://${slug}/tasks/..%2F..%2Fmetadata`))?.code).toBe(-32602);
    expect((await bad("bottle://no-such/metadata"))?.code).toBe(-32002);
    expect((await client.listTools()).tools.length).toBe(13); // still the same session
  });
});
