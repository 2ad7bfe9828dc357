#!/usr/bin/env node
// An orchestrator, as a real MCP client: it spawns the bot-bottle MCP server
// over stdio and, with the tools any MCP client (Claude Code, an agent
// framework) would call, hands one task to each of several sub-agents and
// collects the results:
//
//   bottle_start    N bottles of one profile at once (each gets its own git gate)
//   bottle_run      the sub-agent (sub-agent.sh) in each, detached: a task id at once
//   bottle_task     wait on all N tasks concurrently, reading each one's output by cursor
//   bottle_git_log  what each bottle's git gate decided about the pushes
//   bottle_stop     every bottle, whatever happened (finally)
//
//   node examples/orchestrate/orchestrate.mjs [--manifest FILE] [--profile NAME] [--agents N] [--prefix NAME] [--json]
//
// It is also a module: import { connect, orchestrate } to drive the same flow
// from your own code. test/integration/orchestrate.test.ts runs this script
// against a git upstream of its own.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, realpathSync } from "node:fs";
import nodePath from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const HERE = import.meta.dirname;

/** The sub-agent's script, fed to `sh -s` on the task's stdin. */
export const SUB_AGENT_SCRIPT = readFileSync(nodePath.join(HERE, "sub-agent.sh"), "utf8");

/** How to run the MCP server: this checkout's build when there is one, else the published package. */
export function defaultServer() {
  const cli = nodePath.resolve(HERE, "../../dist/cli.js");
  return existsSync(cli) ? { command: process.execPath, args: [cli, "mcp"] } : { command: "npx", args: ["-y", "bot-bottle", "mcp"] };
}

/**
 * Spawn the MCP server over stdio and connect a client to it. The server gets
 * this process's whole environment (BOTTLE_STATE_DIR, credentials an egress
 * route reads, ...): the SDK passes only a few variables by default.
 */
export async function connect({ command, args, env, stderr = "inherit" } = {}) {
  const server = command ? { command, args: args ?? [] } : defaultServer();
  const transport = new StdioClientTransport({ ...server, env: { ...process.env, ...env }, stderr });
  const client = new Client({ name: "bot-bottle-orchestrate-example", version: "1.0.0" });
  await client.connect(transport);
  return client;
}

const textOf = (r) => (r.content ?? []).map((c) => c.text ?? "").join("\n");

/** The sub-agent's last `RESULT key=value ...` line, as an object (undefined when it printed none). */
export function parseResult(output) {
  const line = output
    .split("\n")
    .reverse()
    .find((l) => l.startsWith("RESULT "));
  if (!line) return undefined;
  return Object.fromEntries(
    line
      .slice("RESULT ".length)
      .split(" ")
      .filter((kv) => kv.includes("="))
      .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
  );
}

/**
 * Start one bottle per slug, run the sub-agent in each, wait for all of them,
 * read their outputs and the git gates' decisions, and stop every bottle.
 *
 * Returns { agents: [{ slug, branch, taskId, state, exitCode, output, result, decisions }] }.
 * A sub-agent that fails is reported, not thrown; a bottle that cannot start
 * or a tool error throws (after every bottle is stopped).
 */
export async function orchestrate(client, o) {
  const { profile, slugs, manifest, waitS = 30, log = () => {}, onProgress = () => {} } = o;
  const task = o.task ?? ((slug) => `Notes from sub-agent ${slug}`);
  const call = async (name, args, options) => {
    const r = await client.callTool({ name, arguments: args }, undefined, options);
    if (r.isError) throw new Error(`${name} ${args.slug ?? args.profile}: ${textOf(r)}`);
    return r.structuredContent;
  };

  try {
    // 1. Start every bottle at once; one server builds a shared image once.
    const starts = await Promise.allSettled(
      slugs.map((slug) =>
        call(
          "bottle_start",
          { profile, slug, ...(manifest ? { manifest } : {}) },
          {
            // A first start may build images for minutes: progress keeps the request alive.
            timeout: 600_000,
            resetTimeoutOnProgress: true,
            onprogress: (p) => {
              log(`[${slug}] ${p.message}`);
              onProgress(slug, String(p.message));
            },
          },
        ),
      ),
    );
    const failed = starts.flatMap((s) => (s.status === "rejected" ? [s.reason instanceof Error ? s.reason.message : String(s.reason)] : []));
    if (failed.length) throw new Error(`could not start every bottle:\n${failed.join("\n")}`);
    const bottles = starts.map((s) => s.value);

    // 2. One detached task per bottle: the clone URL and the branch come from here.
    const agents = await Promise.all(
      bottles.map(async (b) => {
        const clone = b.cloneUrls[0];
        if (!clone) throw new Error(`profile "${profile}" has no git upstream: bottle ${b.slug} has no clone URL`);
        const branch = `agent/${b.slug}`;
        const { taskId } = await call("bottle_run", {
          slug: b.slug,
          argv: ["sh", "-s"],
          stdin: SUB_AGENT_SCRIPT,
          env: { AGENT_CLONE_URL: clone.url, AGENT_BRANCH: branch, AGENT_TASK: task(b.slug) },
          timeout_s: 600,
        });
        log(`[${b.slug}] task ${taskId} started: push ${branch} via ${clone.url}`);
        return { slug: b.slug, branch, taskId };
      }),
    );

    // 3. Wait on all of them at once, each read on from its own cursor.
    const finished = await Promise.all(agents.map((a) => follow(call, a, waitS, log)));

    // 4. What each git gate decided.
    return {
      agents: await Promise.all(
        finished.map(async (a) => {
          const { decisions } = await call("bottle_git_log", { slug: a.slug });
          return { ...a, result: parseResult(a.output), decisions };
        }),
      ),
    };
  } finally {
    // 5. Stop every bottle we asked for, also when a start or a task failed.
    const stops = await Promise.allSettled(slugs.map((slug) => call("bottle_stop", { slug }, { timeout: 300_000 })));
    stops.forEach((s, i) => {
      if (s.status === "rejected") log(`[${slugs[i]}] stop: ${s.reason instanceof Error ? s.reason.message : s.reason}`);
      else log(`[${slugs[i]}] stopped`);
    });
  }
}

/** Read a task to its end: bottle_task with wait_s, from the last cursor, until it ended and all output is read. */
async function follow(call, agent, waitS, log) {
  let output = "";
  let from = 0;
  for (;;) {
    const r = await call("bottle_task", { slug: agent.slug, task_id: agent.taskId, wait_s: waitS, output_from: from }, { timeout: (waitS + 60) * 1000, resetTimeoutOnProgress: true });
    const t = r.tasks[0];
    const chunk = r.output;
    if (chunk) {
      output += chunk.text;
      from = chunk.next;
      for (const line of chunk.text.split("\n")) if (line.trim()) log(`[${agent.slug}] | ${line.trimEnd()}`);
    }
    if (t.state !== "running" && (!chunk || chunk.complete)) {
      log(`[${agent.slug}] task ${t.state}${t.exitCode !== undefined ? ` (exit ${t.exitCode})` : ""}${t.reason ? `: ${t.reason}` : ""}`);
      return { ...agent, state: t.state, exitCode: t.exitCode, output };
    }
  }
}

/** The report a person reads: one line per sub-agent, then each gate's decisions. */
export function formatReport(report) {
  const lines = [];
  for (const a of report.agents) {
    const r = a.result ? `${a.result.branch} @ ${a.result.commit?.slice(0, 12)}` : "no RESULT line";
    lines.push(`${a.slug}: ${a.state}${a.exitCode !== undefined ? ` ${a.exitCode}` : ""}, ${r}`);
    for (const d of a.decisions) lines.push(`  git gate: ${d.ref} ${d.verdict}${d.rule ? ` by rule ${d.rule}` : ""}, upstream ${d.upstreamResult}${d.reason ? `: ${d.reason}` : ""}`);
  }
  return lines.join("\n");
}

async function main() {
  const { values } = parseArgs({
    options: {
      manifest: { type: "string", default: nodePath.join(HERE, "bottle.yaml") },
      profile: { type: "string", default: "worker" },
      agents: { type: "string", default: "3" },
      prefix: { type: "string", default: `orch-${randomBytes(2).toString("hex")}` },
      json: { type: "boolean", default: false },
    },
  });
  const n = Number(values.agents);
  if (!Number.isInteger(n) || n < 1 || n > 20) throw new Error(`--agents must be a whole number from 1 to 20, got "${values.agents}"`);
  const slugs = Array.from({ length: n }, (_, i) => `${values.prefix}-${i + 1}`);
  const client = await connect();
  try {
    const report = await orchestrate(client, {
      profile: values.profile,
      manifest: nodePath.resolve(values.manifest),
      slugs,
      log: (line) => process.stderr.write(`${line}\n`),
    });
    process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`);
    if (report.agents.some((a) => a.state !== "exited")) process.exitCode = 1;
  } finally {
    await client.close();
  }
}

/** Run as a script (not imported): `node orchestrate.mjs`, also through a symlink. */
function invokedDirectly() {
  try {
    return realpathSync(process.argv[1] ?? "") === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  main().catch((err) => {
    process.stderr.write(`orchestrate: ${err instanceof Error ? err.message : err}\n`);
    process.exitCode = 1;
  });
}
