// The built server, spawned over stdio, driven by the SDK's own client.
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { promisify } from "node:util";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderOutputSchema } from "../../src/bottles/render.js";
import { SHAPES } from "../fixtures/shapes.js";
import { CLI, connectServer } from "../helpers/mcp.js";

const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-mcp-"));
const manifest = nodePath.join(dir, "bottle.yaml");
writeFileSync(manifest, SHAPES.everything.replace("./agent.env", "./agent.env").replace(/^version: 1\n/m, "version: 1\n"));
const SECRET = "ghp_mcpTestSecretValue000000000000000000";

describe("MCP server over stdio", () => {
  let client: Client;
  let stderr: () => string;
  let close: () => Promise<void>;

  beforeAll(async () => {
    const c = await connectServer({ BOTTLE_MANIFEST: manifest, BOTTLE_STATE_DIR: nodePath.join(dir, "state"), GITHUB_TOKEN: SECRET });
    client = c.client;
    stderr = c.stderr;
    close = () => c.client.close();
  });
  afterAll(async () => close?.());

  it("lists bottle_render with input and output schemas and read-only annotations", async () => {
    const { tools } = await client.listTools();
    const t = tools.find((x) => x.name === "bottle_render");
    expect(t).toBeDefined();
    expect(t!.inputSchema.properties).toHaveProperty("profile");
    expect(t!.inputSchema.properties).toHaveProperty("manifest");
    expect(t!.inputSchema.properties).toHaveProperty("slug");
    expect(t!.inputSchema.required).toEqual(["profile"]);
    expect(t!.outputSchema?.properties).toHaveProperty("compose");
    expect(t!.annotations).toMatchObject({ readOnlyHint: true, destructiveHint: false });
  });

  it("returns structuredContent that validates against the output schema", async () => {
    const r = await client.callTool({ name: "bottle_render", arguments: { profile: "everything", slug: "mcp-test" } });
    expect(r.isError).toBeFalsy();
    const out = renderOutputSchema.parse(r.structuredContent);
    expect(out.summary.slug).toBe("mcp-test");
    expect(out.summary.services.map((s) => s.service)).toEqual(["firewall", "egress", "git-gate", "supervise", "agent"]);
    expect(out.compose).toContain("name: bottle-mcp-test");
    expect(out.files.map((f) => nodePath.basename(f.path))).toEqual(["pipelock.yaml", "config.json", "config.json"]);
    expect(JSON.stringify(r)).not.toContain(SECRET);
  });

  it("answers an unknown profile with isError listing the known ones", async () => {
    const r = await client.callTool({ name: "bottle_render", arguments: { profile: "nope" } });
    expect(r.isError).toBe(true);
    const text = (r.content as Array<{ text: string }>)[0]!.text;
    expect(text).toContain('unknown profile "nope"');
    expect(text).toContain("Known profiles: everything.");
  });

  it("answers a malformed slug with isError saying what a slug is", async () => {
    for (const slug of ["../../etc/passwd", "UPPER", "x".repeat(41), ""]) {
      const r = await client.callTool({ name: "bottle_render", arguments: { profile: "everything", slug } });
      expect(r.isError).toBe(true);
      expect((r.content as Array<{ text: string }>)[0]!.text).toMatch(/invalid slug .*expected 1-40 characters of lowercase letters, digits and '-'/);
    }
  });

  it("answers wrong argument types and a bad manifest path with isError", async () => {
    const wrong = await client.callTool({ name: "bottle_render", arguments: { profile: 42 } });
    expect(wrong.isError).toBe(true);
    const missing = await client.callTool({ name: "bottle_render", arguments: { profile: "x", manifest: nodePath.join(dir, "missing.yaml") } });
    expect(missing.isError).toBe(true);
    expect((missing.content as Array<{ text: string }>)[0]!.text).toContain("missing.yaml: file not found");
  });

  it("every tool refuses fields it does not know, the ones that take none too", async () => {
    for (const [name, args] of [
      ["bottle_list", { bogus: 1 }],
      ["bottle_cleanup", { bogus: 1 }],
      ["bottle_proposals", { bogus: 1 }],
      ["bottle_render", { profile: "everything", bogus: 1 }],
    ] as const) {
      const r = await client.callTool({ name, arguments: args });
      expect(r.isError, name).toBe(true);
      expect((r.content as Array<{ text: string }>)[0]!.text, name).toContain("bogus");
    }
  });

  it("`bottle render --json` prints exactly bottle_render's structuredContent", async () => {
    const r = await client.callTool({ name: "bottle_render", arguments: { profile: "everything", slug: "same-out" } });
    const cli = await promisify(execFile)(process.execPath, [CLI, "render", "everything", "--slug", "same-out", "--json"], {
      env: { ...process.env, BOTTLE_MANIFEST: manifest, BOTTLE_STATE_DIR: nodePath.join(dir, "state"), GITHUB_TOKEN: SECRET },
    });
    expect(JSON.parse(cli.stdout)).toEqual(r.structuredContent);
  });

  it("`bottle list --json` prints exactly bottle_list's structuredContent", async () => {
    const r = await client.callTool({ name: "bottle_list", arguments: {} });
    const cli = await promisify(execFile)(process.execPath, [CLI, "list", "--json"], { env: { ...process.env, BOTTLE_MANIFEST: manifest, BOTTLE_STATE_DIR: nodePath.join(dir, "state") } });
    expect(JSON.parse(cli.stdout)).toEqual(r.structuredContent);
  });

  it("logs to stderr only and never the secret", () => {
    expect(stderr()).toContain("bot-bottle MCP server ready on stdio");
    expect(stderr()).not.toContain(SECRET);
  });
});

describe("MCP server lifetime", () => {
  it("exits cleanly when stdin ends", async () => {
    const child = spawn(process.execPath, [CLI], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    await new Promise((r) => setTimeout(r, 300));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    child.stdin.end();
    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r("timeout"), 5000))]);
    expect(code).toBe(0);
    expect(out).toBe(""); // nothing but protocol on stdout, and we sent no request
  });
});
