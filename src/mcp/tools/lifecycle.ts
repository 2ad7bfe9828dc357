// Lifecycle tools: thin adapters over src/lifecycle.
import { z } from "zod";
import { stateRoot } from "../../state/root.js";
import { requireBottle } from "../../state/lookup.js";
import { cleanup } from "../../bottles/cleanup.js";
import { execInBottle, MAX_EXEC_TIMEOUT_MS } from "../../bottles/exec.js";
import { listBottles } from "../../bottles/list.js";
import { MAX_TAIL, readLogs } from "../../bottles/logs.js";
import { startBottle } from "../../bottles/start.js";
import { stopBottle } from "../../bottles/stop.js";
import { defineTool } from "../define-tool.js";
import nodePath from "node:path";

const slug = z.string().min(1).max(200).describe("Bottle slug, e.g. implementer-7f3a.");

export const registerStartTool = defineTool({
  name: "bottle_start",
  title: "Start a bottle",
  description: "Start a bottle for an agent profile: networks, sidecars, agent; waits until every service is healthy. Sends progress notifications when the request has a progress token.",
  kind: "write",
  input: z.object({
    profile: z.string().min(1).max(64),
    manifest: z.string().min(1).max(4096).optional(),
    slug: slug.optional(),
  }),
  output: z.object({ slug: z.string(), project: z.string(), state: z.string(), services: z.array(z.string()), agentProxy: z.string(), cloneUrls: z.array(z.object({ name: z.string(), url: z.string() })) }),
  handler: async ({ profile, manifest, slug: s }, ctx) => {
    const token = ctx._meta?.progressToken;
    let n = 0;
    const r = await startBottle({
      profile,
      ...(manifest ? { manifest } : {}),
      ...(s !== undefined ? { slug: s } : {}),
      signal: ctx.signal,
      onProgress: (step, message) => {
        if (token !== undefined) void ctx.sendNotification({ method: "notifications/progress", params: { progressToken: token, progress: ++n, total: 6, message: `${step}: ${message}` } }).catch(() => {});
      },
    });
    const out = { slug: r.summary.slug, project: r.summary.project, state: r.metadata.state, services: r.summary.services.map((x) => x.service), agentProxy: r.summary.agentProxy, cloneUrls: r.summary.cloneUrls };
    return { structured: out, text: `Bottle ${out.slug} is ${out.state} (services: ${out.services.join(", ")}). Run commands with bottle_exec.` };
  },
});

export const registerStopTool = defineTool({
  name: "bottle_stop",
  title: "Stop a bottle",
  description: "Stop a bottle: save its logs, remove its containers and networks. Idempotent. purge also deletes its state dir.",
  kind: "destructive",
  idempotent: true,
  input: z.object({ slug, purge: z.boolean().default(false) }),
  output: z.object({ slug: z.string(), state: z.string(), wasState: z.string(), ms: z.number() }),
  handler: async ({ slug: s, purge }) => {
    const r = await stopBottle(s, { purge });
    return { structured: r, text: `Bottle ${r.slug} ${r.state} (was ${r.wasState}) in ${r.ms} ms.` };
  },
});

export const registerListTool = defineTool({
  name: "bottle_list",
  title: "List bottles",
  description: "Every bottle known from state dirs and Docker labels, with its state: running, starting, stopped, failed, degraded or orphaned.",
  kind: "read",
  input: z.object({}),
  output: z.object({ bottles: z.array(z.object({ slug: z.string(), profile: z.string(), state: z.string(), detail: z.string().optional(), services: z.array(z.string()) })) }),
  handler: async () => {
    const bottles = (await listBottles()).map((b) => ({ slug: b.slug, profile: b.profile, state: b.state, ...(b.detail ? { detail: b.detail } : {}), services: b.containers.map((c) => `${c.service}:${c.state}`) }));
    return { structured: { bottles }, text: bottles.length ? bottles.map((b) => `${b.slug}  ${b.state}  (${b.profile})${b.detail ? `  ${b.detail}` : ""}`).join("\n") : "No bottles." };
  },
});

export const registerLogsTool = defineTool({
  name: "bottle_logs",
  title: "Read bottle logs",
  description: "Bounded logs of a bottle: live while running, from the saved compose.log after stop. Filter by service, tail, since (RFC 3339 or e.g. 10m) and a substring.",
  kind: "read",
  input: z.object({
    slug,
    service: z.string().max(64).optional(),
    tail: z.number().int().min(1).max(MAX_TAIL).default(200),
    since: z.string().max(64).optional(),
    grep: z.string().max(500).optional(),
  }),
  output: z.object({ source: z.string(), lines: z.array(z.string()), truncated: z.boolean().optional() }),
  handler: async ({ slug: s, ...q }) => {
    const root = stateRoot();
    const meta = requireBottle(root, s);
    const r = await readLogs(meta, nodePath.join(root, meta.slug), q);
    return { structured: r, text: r.lines.join("\n") || "(no log lines)" };
  },
});

export const registerExecTool = defineTool({
  name: "bottle_exec",
  title: "Run a command in a bottle",
  description: "Run argv in the bottle's agent container (no shell unless you call one) and return exit code, stdout, stderr (capped) and duration.",
  kind: "write",
  input: z.object({
    slug,
    argv: z.array(z.string().max(100_000)).min(1).max(1000),
    timeout_ms: z.number().int().min(1).max(MAX_EXEC_TIMEOUT_MS).default(600_000),
    stdin: z.string().max(10_000_000).optional(),
  }),
  output: z.object({ exitCode: z.number(), stdout: z.string(), stderr: z.string(), truncated: z.boolean(), timedOut: z.boolean(), durationMs: z.number() }),
  handler: async ({ slug: s, argv, timeout_ms, stdin }, ctx) => {
    const r = await execInBottle(s, argv, { timeoutMs: timeout_ms, signal: ctx.signal, ...(stdin !== undefined ? { stdin } : {}) });
    return { structured: r, text: `exit ${r.exitCode} in ${r.durationMs} ms${r.timedOut ? " (timed out)" : ""}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}` };
  },
});

export const registerCleanupTool = defineTool({
  name: "bottle_cleanup",
  title: "Clean up orphans",
  description: "Remove Docker objects no live bottle owns (containers/networks without state, bottles whose start died, leftovers of stopped ones) and stale locks. Never touches running bottles.",
  kind: "destructive",
  idempotent: true,
  input: z.object({ purge: z.boolean().default(false).describe("Also delete the state dirs of what is cleaned up.") }),
  output: z.object({
    removed: z.array(z.object({ slug: z.string(), reason: z.string(), containers: z.array(z.string()), networks: z.array(z.string()) })),
    staleLocks: z.array(z.string()),
    staleRules: z.array(z.string()),
  }),
  handler: async ({ purge }) => {
    const r = await cleanup({ purge });
    const text = r.removed.length || r.staleLocks.length || r.staleRules.length ? [...r.removed.map((x) => `removed ${x.slug}: ${x.containers.length} containers, ${x.networks.length} networks (${x.reason})`), ...r.staleLocks.map((s) => `removed stale lock ${s}`), ...r.staleRules.map((b) => `removed host firewall rule for gone bridge ${b}`)].join("\n") : "Nothing to clean up.";
    return { structured: r, text };
  },
});
