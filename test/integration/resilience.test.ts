// Failure modes (issue 4): a server killed mid-start, an unreachable Docker,
// many bottles at once.
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { afterAll, expect, it } from "vitest";
import { docker } from "../../src/engine/run.js";
import { listBottles } from "../../src/bottles/list.js";
import { startBottle } from "../../src/bottles/start.js";
import { stopBottle } from "../../src/bottles/stop.js";
import { describeDocker } from "../helpers/docker.js";
import { CLI, connectServer } from "../helpers/mcp.js";

const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-resil-"));
const manifest = nodePath.join(dir, "bottle.yaml");
writeFileSync(manifest, "version: 1\nagents:\n  res:\n    image: node:24-bookworm-slim\n    network: { allow: [allowed.test] }\n");
const env = { ...(process.env as Record<string, string>), BOTTLE_MANIFEST: manifest, BOTTLE_STATE_DIR: nodePath.join(dir, "state"), BOTTLE_SUBNET_POOL: "10.218.0.0/16" };
const tag = process.pid.toString(16).slice(-4);
const text = (r: unknown) => (r as { content: Array<{ text: string }> }).content[0]!.text;

async function objects(slugPrefix: string): Promise<string[]> {
  const ps = await docker(["ps", "-a", "--filter", "label=dev.bot-bottle.slug", "--format", '{{.Label "dev.bot-bottle.slug"}}']);
  const nets = await docker(["network", "ls", "--filter", "label=dev.bot-bottle.slug", "--format", "{{.Name}}"]);
  return [...ps.stdout.split("\n"), ...nets.stdout.split("\n")].filter((x) => x.includes(slugPrefix));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeDocker("resilience", () => {
  afterAll(async () => {
    for (const b of await listBottles({ env }).catch(() => [])) if (b.slug.endsWith(tag)) await stopBottle(b.slug, { env, purge: true }).catch(() => {});
  });

  it("a server killed during start leaves an orphan that a new server lists and cleans up", async () => {
    const slug = `killed-${tag}`;
    const client = new Client({ name: "killer", version: "0" });
    const t = new StdioClientTransport({ command: process.execPath, args: [CLI, "mcp"], env, stderr: "ignore" });
    await client.connect(t);
    const pending = client.callTool({ name: "bottle_start", arguments: { profile: "res", slug } }, undefined, { timeout: 120_000 }).catch((e: Error) => e);
    // Wait until compose has created something, then kill the server hard.
    for (let i = 0; i < 200 && !(await objects(slug)).length; i++) await sleep(100);
    expect((await objects(slug)).length).toBeGreaterThan(0);
    execFileSync("kill", ["-9", String(t.pid)]);
    await pending;
    // Its `docker compose up` child may still be finishing; let it.
    for (let i = 0; i < 100; i++) {
      const busy = execFileSync("sh", ["-c", `pgrep -f 'bottle-${slug} ' || true`])
        .toString()
        .trim();
      if (!busy) break;
      await sleep(200);
    }

    const second = await connectServer(env);
    try {
      const list = await second.client.callTool({ name: "bottle_list", arguments: {} });
      const entry = (list.structuredContent as { bottles: Array<{ slug: string; state: string }> }).bottles.find((b) => b.slug === slug);
      expect(entry?.state).toBe("orphaned");
      const cleaned = await second.client.callTool({ name: "bottle_cleanup", arguments: { purge: true } });
      expect(cleaned.isError).toBeFalsy();
      expect((cleaned.structuredContent as { removed: Array<{ slug: string }> }).removed.map((r) => r.slug)).toContain(slug);
      expect(await objects(slug)).toEqual([]);
      const after = await second.client.callTool({ name: "bottle_list", arguments: {} });
      expect((after.structuredContent as { bottles: Array<{ slug: string }> }).bottles.some((b) => b.slug === slug)).toBe(false);
    } finally {
      await second.client.close();
    }
  });

  it("answers every tool clearly and quickly when Docker is unreachable", async () => {
    const c = await connectServer({ ...env, DOCKER_HOST: `unix://${dir}/no-docker.sock` });
    try {
      const calls: Array<[string, Record<string, unknown>]> = [
        ["bottle_start", { profile: "res", slug: `nodocker-${tag}` }],
        ["bottle_list", {}],
        ["bottle_cleanup", {}],
        ["bottle_stop", { slug: `nodocker-${tag}` }],
        ["bottle_exec", { slug: `nodocker-${tag}`, argv: ["true"] }],
      ];
      for (const [name, args] of calls) {
        const t0 = Date.now();
        const r = await c.client.callTool({ name, arguments: args }, undefined, { timeout: 30_000 });
        expect(r.isError, name).toBe(true);
        expect(Date.now() - t0, name).toBeLessThan(20_000);
        if (name === "bottle_start" || name === "bottle_list" || name === "bottle_cleanup") expect(text(r), name).toMatch(/Docker is unreachable|docker info/);
      }
      const rendered = await c.client.callTool({ name: "bottle_render", arguments: { profile: "res" } });
      expect(rendered.isError).toBeFalsy(); // rendering needs no Docker
      // The failed start left no objects and says so.
      const meta = JSON.parse(execFileSync("cat", [nodePath.join(dir, "state", `nodocker-${tag}`, "metadata.json")]).toString());
      expect(meta.state).toBe("failed");
    } finally {
      await c.client.close();
    }
  });

  it("starts ten bottles in parallel on distinct subnets", async () => {
    const slugs = Array.from({ length: 10 }, (_, i) => `par${i}-${tag}`);
    const results = await Promise.allSettled(slugs.map((slug) => startBottle({ profile: "res", manifest, slug, env })));
    const failed = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
    expect(failed.map((f) => String(f.reason?.message ?? f.reason))).toEqual([]);
    const subnets = results.flatMap((r) => (r.status === "fulfilled" ? r.value.summary.networks.map((n) => n.subnet) : []));
    expect(subnets).toHaveLength(20);
    expect(new Set(subnets).size).toBe(20);
    const listed = await listBottles({ env });
    for (const s of slugs) expect(listed.find((b) => b.slug === s)?.state).toBe("running");
    await Promise.all(slugs.map((s) => stopBottle(s, { env, purge: true })));
    expect(await objects(`-${tag}`)).toEqual([]);
  });
});
