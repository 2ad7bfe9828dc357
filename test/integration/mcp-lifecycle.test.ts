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
const text = (r: unknown) => ((r as { content: Array<{ text: string }> }).content)[0]!.text;

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
    const started = await client.request(
      { method: "tools/call", params: { name: "bottle_start", arguments: { profile: "mcp", slug }, _meta: { progressToken: "p1" } } },
      CallToolResultSchema,
      { onprogress: (p) => progress.push(String(p.message)), timeout: 300_000 },
    );
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
    ];
    for (const call of bad) {
      const r = await client.callTool(call);
      expect(r.isError, JSON.stringify(call)).toBe(true);
    }
  });
});
