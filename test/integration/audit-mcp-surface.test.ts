// The MCP surface as an independent orchestrator sees it, on real Docker:
// every tool refuses bad arguments of every kind with an isError result the
// session survives, and changes nothing on disk or in Docker; every result
// validates against the tool's declared output schema (the SDK client checks
// it once it has listed the tools); annotations match SPEC §8; no result,
// error, log line or file we write carries the credential the profile injects.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { Tool } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeDocker } from "../helpers/docker.js";
import { connectServer } from "../helpers/mcp.js";

const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-audit-surface-"));
const manifest = nodePath.join(dir, "bottle.yaml");
const SECRET = "ghp_auditSurfaceFake0000000000000000000000";
writeFileSync(
  manifest,
  `version: 1
agents:
  au:
    image: node:24-bookworm-slim
    network: { allow: [allowed.test] }
    egress:
      routes:
        - host: api.github.com
          header: Authorization
          value: "Bearer \${GITHUB_TOKEN}"
`,
);
const stateDir = nodePath.join(dir, "state");
// Every log level: a secret must not reach stderr at any of them.
const env = { BOTTLE_MANIFEST: manifest, BOTTLE_STATE_DIR: stateDir, BOTTLE_SUBNET_POOL: "10.244.0.0/16", GITHUB_TOKEN: SECRET, BOTTLE_LOG_LEVEL: "trace" };
const slug = `aus-${process.pid.toString(16).slice(-4)}`;
const other = `ausx-${process.pid.toString(16).slice(-4)}`;
const text = (r: unknown) => ((r as { content?: Array<{ text?: string }> }).content ?? []).map((c) => c.text ?? "").join("\n");

// SPEC §8's annotation column.
const SPEC_ANNOTATIONS: Record<string, { readOnlyHint: boolean; destructiveHint: boolean; idempotentHint?: boolean }> = {
  bottle_render: { readOnlyHint: true, destructiveHint: false },
  bottle_start: { readOnlyHint: false, destructiveHint: false },
  bottle_stop: { readOnlyHint: false, destructiveHint: true, idempotentHint: true },
  bottle_logs: { readOnlyHint: true, destructiveHint: false },
  bottle_list: { readOnlyHint: true, destructiveHint: false },
  bottle_exec: { readOnlyHint: false, destructiveHint: false },
  bottle_proposals: { readOnlyHint: true, destructiveHint: false },
  bottle_decide: { readOnlyHint: false, destructiveHint: false },
  bottle_cleanup: { readOnlyHint: false, destructiveHint: true, idempotentHint: true },
  bottle_git_log: { readOnlyHint: true, destructiveHint: false },
  bottle_run: { readOnlyHint: false, destructiveHint: false },
  bottle_task: { readOnlyHint: true, destructiveHint: false },
  bottle_cancel: { readOnlyHint: false, destructiveHint: true },
};

interface Prop {
  type?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  enum?: unknown[];
  items?: Prop;
  minItems?: number;
  maxItems?: number;
}

/** Values of the wrong kind, or just outside the declared bounds, for one property. */
function wrongValues(p: Prop): unknown[] {
  const out: unknown[] = [null, { nested: true }];
  if (p.type !== "string" && !p.enum) out.push("a string");
  if (p.type !== "number" && p.type !== "integer") out.push(42);
  if (p.type !== "boolean") out.push(true);
  if (p.type !== "array") out.push(["x"]);
  if (p.enum) out.push("not-one-of-them");
  if (p.type === "string") {
    if (p.minLength) out.push("");
    if (p.maxLength !== undefined) out.push("x".repeat(p.maxLength + 1));
  }
  if (p.type === "number" || p.type === "integer") {
    if (p.minimum !== undefined) out.push(p.minimum - 1, -1e308);
    if (p.exclusiveMinimum !== undefined) out.push(p.exclusiveMinimum);
    if (p.maximum !== undefined) out.push(p.maximum + 1, 1e308);
    if (p.type === "integer") out.push(1.5);
  }
  if (p.type === "array") {
    if (p.minItems) out.push([]);
    if (p.maxItems !== undefined) out.push(Array.from({ length: p.maxItems + 1 }, () => "x"));
    out.push([42], [null]);
  }
  return out;
}

/** Identifiers that name things on disk or in Docker: our own validation must refuse these. */
const HOSTILE_IDS = ["../../etc/passwd", "..", "/abs", "a/b", "a\0b", "\u202eevil", "a\u200bb", "ＡＢＣ", "-rf", "$(id)", "x".repeat(100_000), "%2e%2e%2f"];

describeDocker("audit: the MCP surface over stdio", () => {
  let client: Client;
  let stderr: () => string;
  let tools: Tool[];
  let taskId: string;
  const seen: unknown[] = [];
  const call = async (name: string, args: unknown) => {
    const r = await client.callTool({ name, arguments: args as Record<string, unknown> }, undefined, { timeout: 120_000 });
    seen.push(r);
    return r;
  };
  const ok = async (name: string, args: Record<string, unknown>) => {
    const r = await call(name, args);
    expect(r.isError, `${name}: ${text(r)}`).toBeFalsy();
    return r.structuredContent as Record<string, unknown>;
  };
  /** Every file under the state root with its size and mtime, and every Docker object of the bottle. */
  const snapshot = () => {
    const files: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = nodePath.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else {
          const st = statSync(p);
          files.push(`${nodePath.relative(stateDir, p)} ${st.size} ${st.mtimeMs}`);
        }
      }
    };
    walk(stateDir);
    const docker = execFileSync("sh", [
      "-c",
      "docker ps -a --filter label=dev.bot-bottle.slug --format '{{.ID}} {{.Names}} {{.State}}'; docker network ls --filter label=dev.bot-bottle.slug --format '{{.ID}} {{.Name}}'",
    ]).toString();
    return {
      files: files.sort(),
      docker: docker
        .split("\n")
        .filter((l) => l.includes(slug) || l.includes(other))
        .sort(),
    };
  };

  beforeAll(async () => {
    const c = await connectServer(env);
    client = c.client;
    stderr = c.stderr;
    // Listing caches each tool's output schema: from here on the client validates every structuredContent.
    tools = (await client.listTools()).tools;
    await ok("bottle_start", { profile: "au", slug });
    taskId = String((await ok("bottle_run", { slug, argv: ["sh", "-c", "echo task-out; env | grep -c GITHUB_TOKEN || true"] })).taskId);
    await ok("bottle_task", { slug, task_id: taskId, wait_s: 20 });
  }, 120_000);
  afterAll(async () => {
    await client?.callTool({ name: "bottle_stop", arguments: { slug, purge: true } }).catch(() => {});
    await client?.callTool({ name: "bottle_stop", arguments: { slug: other, purge: true } }).catch(() => {});
    await client?.close();
  });

  it("annotations are the ones SPEC §8 gives each tool, and every tool declares an output schema", () => {
    expect(tools.map((t) => t.name).sort()).toEqual(Object.keys(SPEC_ANNOTATIONS).sort());
    for (const t of tools) {
      expect(t.annotations, t.name).toMatchObject(SPEC_ANNOTATIONS[t.name]!);
      expect(t.outputSchema?.type, t.name).toBe("object");
      expect(t.inputSchema.additionalProperties, `${t.name} refuses unknown fields`).toBe(false);
    }
  });

  it("every tool answers every bad argument with isError, the session survives, and nothing changes on disk or in Docker", async () => {
    const base: Record<string, Record<string, unknown>> = {
      bottle_render: { profile: "au" },
      bottle_start: { profile: "au", slug: other },
      bottle_stop: { slug },
      bottle_list: {},
      bottle_logs: { slug },
      bottle_exec: { slug, argv: ["true"] },
      bottle_run: { slug, argv: ["true"] },
      bottle_task: { slug, task_id: taskId },
      bottle_cancel: { slug, task_id: taskId },
      bottle_cleanup: {},
      bottle_git_log: { slug },
      bottle_proposals: {},
      bottle_decide: { slug, id: "p1", verdict: "deny" },
    };
    const idFields = new Set(["slug", "task_id", "id", "profile", "service", "upstream", "cursor", "since", "manifest", "cwd"]);
    const probes: Array<[string, unknown]> = [];
    for (const t of tools) {
      const b = base[t.name]!;
      const props = (t.inputSchema.properties ?? {}) as Record<string, Prop>;
      probes.push([t.name, { ...b, not_a_field: 1 }]);
      for (const req of t.inputSchema.required ?? []) {
        const { [req]: _, ...rest } = b;
        probes.push([t.name, rest]);
      }
      for (const [name, p] of Object.entries(props)) {
        for (const v of wrongValues(p)) probes.push([t.name, { ...b, [name]: v }]);
        // "/abs" is a well-formed cwd: a dir that turns out missing in the agent is a failed task, recorded as such.
        if (idFields.has(name)) for (const v of HOSTILE_IDS.filter((x) => !(name === "cwd" && x.startsWith("/")))) probes.push([t.name, { ...b, [name]: v }]);
      }
      if (props.argv) probes.push([t.name, { ...b, argv: ["true", "a\0b"] }], [t.name, { ...b, argv: ["/bin/tr\0ue"] }]);
    }
    probes.push(
      ["bottle_run", { slug, argv: ["true"], env: { "A=B": "x" } }],
      ["bottle_run", { slug, argv: ["true"], env: { "": "x" } }],
      ["bottle_run", { slug, argv: ["true"], env: { OK: "a\0b" } }],
      ["bottle_run", { slug, argv: ["true"], env: { PATH: 1 } }],
      ["bottle_run", { slug, argv: ["true"], cwd: "relative/dir" }],
      ["bottle_logs", { slug, since: "--help" }],
      ["bottle_logs", { slug, since: "not a time" }],
      ["bottle_logs", { slug, service: "--help" }],
      ["bottle_logs", { slug, task_id: "t0000-000000" }],
      ["bottle_task", { slug, task_id: "t0000-000000" }],
      ["bottle_cancel", { slug, task_id: "t0000-000000" }],
      ["bottle_decide", { slug, id: "nope", verdict: "approve" }],
      ["bottle_render", { profile: "au", manifest: "/dev/zero" }],
      ["bottle_render", { profile: "au", manifest: "/proc/self/environ" }],
      ["bottle_start", { profile: "au", slug: other, manifest: "/proc/self/environ" }],
      ["bottle_start", { profile: "au", slug }], // already running
      ["bottle_nope", {}],
      // More than the kernel takes (E2BIG): one argument over 128 KiB in bytes, or too much in all.
      ["bottle_exec", { slug, argv: ["echo", "é".repeat(70_000)] }],
      ["bottle_exec", { slug, argv: ["echo", ...Array.from({ length: 25 }, () => "x".repeat(100_000))] }],
      ["bottle_run", { slug, argv: ["echo", ...Array.from({ length: 25 }, () => "x".repeat(100_000))] }],
      ["bottle_run", { slug, argv: ["true"], env: { BIG: "é".repeat(70_000) } }],
    );
    expect(probes.length).toBeGreaterThan(300);

    const before = snapshot();
    const accepted: string[] = [];
    for (const [name, args] of probes) {
      const r = await call(name, args);
      const what = `${name} ${JSON.stringify(args).slice(0, 160)}`;
      if (!r.isError) {
        accepted.push(what);
        continue;
      }
      expect(text(r).length, what).toBeGreaterThan(0);
      expect(text(r).length, `${what}: the error stays short`).toBeLessThan(4_000);
      expect(r.structuredContent, what).toBeUndefined();
      expect(text(r), what).not.toMatch(/Output validation error|Internal error|TypeError|ReferenceError|at .*\.(ts|js):\d+/);
    }
    expect(accepted).toEqual([]);
    // Still the same session: it answers.
    expect((await call("bottle_list", {})).isError).toBeFalsy();
    expect(snapshot()).toEqual(before);
  }, 120_000);

  it("the tools annotated read-only change nothing on disk or in Docker", async () => {
    const before = snapshot();
    const readOnly = tools.filter((t) => t.annotations?.readOnlyHint).map((t) => t.name);
    expect(readOnly.sort()).toEqual(["bottle_git_log", "bottle_list", "bottle_logs", "bottle_proposals", "bottle_render", "bottle_task"]);
    await ok("bottle_render", { profile: "au", slug: other });
    await ok("bottle_list", {});
    await ok("bottle_logs", { slug, tail: 5 });
    await ok("bottle_logs", { slug, task_id: taskId });
    await ok("bottle_task", { slug });
    await ok("bottle_task", { slug, task_id: taskId, wait_s: 1 });
    await ok("bottle_proposals", { include_decided: true });
    expect((await call("bottle_git_log", { slug })).isError).toBe(true); // no git gate in this profile
    for (const kind of ["logs", "compose", "metadata", "proposals"]) await client.readResource({ uri: `bottle://${slug}/${kind}` });
    await client.readResource({ uri: `bottle://${slug}/tasks/${taskId}` });
    expect(snapshot()).toEqual(before);
  });

  it("valid calls of every tool return structuredContent the client validated against the declared schema", async () => {
    await ok("bottle_render", { profile: "au", slug: "render-only" });
    await ok("bottle_list", {});
    await ok("bottle_logs", { slug, tail: 5 });
    await ok("bottle_logs", { slug, task_id: taskId });
    await ok("bottle_exec", { slug, argv: ["sh", "-c", "echo out; echo err >&2; exit 2"] });
    await ok("bottle_task", { slug });
    await ok("bottle_task", { slug, task_id: taskId, output_from: 1, max_bytes: 3 });
    const far = await ok("bottle_task", { slug, task_id: taskId, output_from: Number.MAX_SAFE_INTEGER });
    expect(far.output).toMatchObject({ text: "", complete: true });
    await ok("bottle_cancel", { slug, task_id: taskId });
    await ok("bottle_proposals", { include_decided: true });
    await ok("bottle_proposals", { slug, limit: 1 });
    await ok("bottle_cleanup", {});
    await ok("bottle_logs", { slug, since: "10m", service: "firewall" });
    // Error results carry no structuredContent (nothing for the schema to reject) and say what to do.
    const unknown = await call("bottle_stop", { slug: other });
    expect(unknown.isError).toBe(true);
    expect(unknown.structuredContent).toBeUndefined();
    expect(text(unknown)).toContain(`no bottle "${other}"`);
    expect(text(unknown)).toContain(slug);
  });

  it("no result, error, log line or file we wrote carries the credential", async () => {
    expect(JSON.stringify(seen)).not.toContain(SECRET);
    expect(stderr()).not.toContain(SECRET);
    const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(nodePath.join(d, e.name)) : [nodePath.join(d, e.name)]));
    for (const f of walk(stateDir)) expect(readFileSync(f).includes(SECRET), f).toBe(false);
    // The agent never had it either (the task counted GITHUB_TOKEN lines in its env).
    const out = await ok("bottle_task", { slug, task_id: taskId });
    expect((out.output as { text: string }).text).toMatch(/task-out\n0\n/);
  });
});
