// Lifecycle tools through the real MCP client over stdio, on real Docker.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { CallToolResultSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeDocker } from "../helpers/docker.js";
import { connectServer } from "../helpers/mcp.js";

const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-mcp-life-"));
const manifest = nodePath.join(dir, "bottle.yaml");
writeFileSync(manifest, "version: 1\nagents:\n  mcp:\n    image: node:24-bookworm-slim\n    network: { allow: [allowed.test] }\n");
const slug = `mcp-${process.pid.toString(16).slice(-4)}`;
const text = (r: unknown) => (r as { content: Array<{ text: string }> }).content[0]!.text;

describeDocker("lifecycle tools over MCP stdio", () => {
  let client: Client;
  beforeAll(async () => {
    client = (await connectServer({ BOTTLE_MANIFEST: manifest, BOTTLE_STATE_DIR: nodePath.join(dir, "state"), BOTTLE_SUBNET_POOL: "10.216.0.0/16" })).client;
  });
  afterAll(async () => {
    await client?.callTool({ name: "bottle_stop", arguments: { slug } }).catch(() => {});
    await client?.close();
  });

  it("starts with progress, lists, execs, reads logs and stops", async () => {
    const progress: string[] = [];
    const started = await client.request({ method: "tools/call", params: { name: "bottle_start", arguments: { profile: "mcp", slug }, _meta: { progressToken: "p1" } } }, CallToolResultSchema, {
      onprogress: (p) => progress.push(String(p.message)),
      timeout: 300_000,
    });
    expect(started.isError).toBeFalsy();
    expect(started.structuredContent).toMatchObject({ slug, state: "running", services: ["firewall", "agent"] });
    expect(progress.some((m) => m.startsWith("up:"))).toBe(true);

    const list = await client.callTool({ name: "bottle_list", arguments: {} });
    expect((list.structuredContent as { bottles: Array<{ slug: string; state: string }> }).bottles).toContainEqual(expect.objectContaining({ slug, state: "running" }));

    const ex = await client.callTool({ name: "bottle_exec", arguments: { slug, argv: ["sh", "-c", "echo hi; exit 3"] } });
    expect(ex.structuredContent).toMatchObject({ exitCode: 3, stdout: "hi", timedOut: false });

    const logs = await client.callTool({ name: "bottle_logs", arguments: { slug, service: "firewall", tail: 50 } });
    expect(logs.isError).toBeFalsy();
    expect((logs.structuredContent as { source: string }).source).toBe("live");

    const { resourceTemplates } = await client.listResourceTemplates();
    expect(resourceTemplates.map((t) => t.uriTemplate).sort()).toEqual([
      "bottle://{slug}/compose",
      "bottle://{slug}/logs",
      "bottle://{slug}/metadata",
      "bottle://{slug}/proposals",
      "bottle://{slug}/tasks/{task_id}",
    ]);
    const { resources } = await client.listResources();
    expect(resources.map((r) => r.uri)).toContain(`bottle://${slug}/metadata`);
    const metaRes = await client.readResource({ uri: `bottle://${slug}/metadata` });
    expect(JSON.parse((metaRes.contents[0] as { text: string }).text)).toMatchObject({ slug, state: "running" });
    const composeRes = await client.readResource({ uri: `bottle://${slug}/compose` });
    expect((composeRes.contents[0] as { text: string }).text).toContain(`name: bottle-${slug}`);
    const done = await client.complete({ ref: { type: "ref/resource", uri: "bottle://{slug}/logs" }, argument: { name: "slug", value: slug.slice(0, 4) } });
    expect(done.completion.values).toContain(slug);
    await expect(client.readResource({ uri: "bottle://no-such/metadata" })).rejects.toThrow(/no bottle "no-such"/);

    const stopped = await client.callTool({ name: "bottle_stop", arguments: { slug } });
    expect(stopped.structuredContent).toMatchObject({ slug, state: "stopped", wasState: "running" });
  });

  it("answers bad input with isError and a way forward", async () => {
    const unknown = await client.callTool({ name: "bottle_stop", arguments: { slug: "no-such-bottle" } });
    expect(unknown.isError).toBe(true);
    expect(text(unknown)).toContain('no bottle "no-such-bottle"');
    expect(text(unknown)).toContain(slug); // lists the known ones
    const bad = [
      { name: "bottle_stop", arguments: { slug: "../../etc" } },
      { name: "bottle_exec", arguments: { slug, argv: [] } },
      { name: "bottle_exec", arguments: { slug, argv: ["true"], timeout_ms: 10 ** 12 } },
      { name: "bottle_logs", arguments: { slug, tail: -1 } },
      { name: "bottle_logs", arguments: { slug, service: "nope" } },
      { name: "bottle_start", arguments: { profile: "nope" } },
      { name: "bottle_start", arguments: { profile: 7 } },
      { name: "bottle_exec", arguments: { slug, argv: ["true"] } }, // stopped bottle
      { name: "bottle_exec", arguments: { slug: "../../../root", argv: ["true"] } },
      { name: "bottle_exec", arguments: { slug, argv: "true" } },
      { name: "bottle_exec", arguments: { slug, argv: ["true"], timeout_ms: -5 } },
      { name: "bottle_exec", arguments: { slug, argv: ["true"], timeout_ms: 1.5 } },
      { name: "bottle_logs", arguments: { slug: "UPPER" } },
      { name: "bottle_logs", arguments: { slug, tail: 10 ** 9 } },
      { name: "bottle_logs", arguments: { slug, tail: "ten" } },
      { name: "bottle_logs", arguments: {} },
      { name: "bottle_stop", arguments: { slug: "" } },
      { name: "bottle_stop", arguments: { slug: "a".repeat(41) } },
      { name: "bottle_stop", arguments: { slug: "x/../y" } },
      { name: "bottle_stop", arguments: { slug, purge: "yes" } },
      { name: "bottle_start", arguments: { profile: "mcp", slug: "-leading-dash" } },
      { name: "bottle_start", arguments: { profile: "mcp", manifest: "/nonexistent/bottle.yaml" } },
      { name: "bottle_render", arguments: { profile: "mcp", slug: "bad slug" } },
    ];
    const stateBefore = JSON.stringify((await client.callTool({ name: "bottle_list", arguments: {} })).structuredContent);
    for (const call of bad) {
      const r = await client.callTool(call);
      expect(r.isError, JSON.stringify(call)).toBe(true);
    }
    expect(bad.length).toBeGreaterThanOrEqual(20);
    // Bad input changes nothing.
    expect(JSON.stringify((await client.callTool({ name: "bottle_list", arguments: {} })).structuredContent)).toBe(stateBefore);
  });
});
