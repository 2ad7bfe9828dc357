// The git gate's push decisions as records, parsed from its JSON log lines
// (live while the bottle runs, from compose.log after stop).
import { z } from "zod";
import { BottleError } from "../errors.js";
import { escapeAgentText } from "../contracts/escape.js";
import { eventField, LOG_EVENTS } from "../contracts/log-line.js";
import { contextOf, type CtxInput } from "./context.js";
import { openBottle } from "./handle.js";
import { MAX_TAIL, readLogs } from "./logs.js";

export const gitDecisionSchema = z.object({
  time: z.string(),
  push: z.string().describe("Id shared by the ref updates of one push."),
  upstream: z.string(),
  ref: z.string().describe("The ref as the agent named it (agent-supplied text; a name holding a secret is withheld and replaced by a note)."),
  index: z.number().int().optional().describe("Position of this update in the push, from 1."),
  old: z.string(),
  new: z.string(),
  change: z.enum(["create", "update", "delete"]),
  verdict: z.enum(["accepted", "refused"]),
  rule: z
    .string()
    .optional()
    .describe(
      "The rule that refused the update. Policy: ref_format, protected, push_refs, allow_force, allow_delete, stale, max_push_bytes, secret_scan, atomic, upstream. Git and the gate itself: fsck (git's object checks), unpack, git, hook_error, timeout, protocol.",
    ),
  reason: z.string().optional().describe("Why, in the gate's words; may quote agent-supplied names."),
  upstreamResult: z.enum(["ok", "refused", "not-attempted", "unknown"]).describe("unknown: the gate was pushing to the upstream when the check failed or timed out."),
  upstreamMessage: z.string().optional().describe("What the upstream said when it refused."),
  bytes: z.number().optional(),
  ms: z.record(z.string(), z.number()).optional(),
});

export type GitDecision = z.output<typeof gitDecisionSchema>;

/** What bottle_git_log returns as structuredContent and `bottle git-log --json` prints. */
export const gitDecisionOutputSchema = z.object({ source: z.string().describe("live (from the running gate), file (compose.log after stop) or none."), decisions: z.array(gitDecisionSchema) });

/** The gate's JSON log line: the same fields, in its snake_case, plus ts/mode/event. */
const logLine = gitDecisionSchema.omit({ time: true, upstreamResult: true, upstreamMessage: true }).extend({
  ts: z.string(),
  mode: z.literal("git-gate"),
  event: z.literal(LOG_EVENTS.push),
  upstream_result: gitDecisionSchema.shape.upstreamResult,
  upstream_message: z.string().optional(),
});

/** Decision records from compose log lines ("<container> | <time> {json}" or bare JSON); other lines are skipped. */
export function parseGitDecisions(lines: readonly string[]): GitDecision[] {
  const out: GitDecision[] = [];
  for (const line of lines) {
    const start = line.indexOf('{"ts"');
    if (start < 0) continue;
    let raw: unknown;
    try {
      raw = JSON.parse(line.slice(start));
    } catch {
      continue;
    }
    const r = logLine.safeParse(raw);
    if (!r.success) continue;
    const { ts, mode: _mode, event: _event, upstream_result, upstream_message, ...same } = r.data;
    out.push({ time: ts, ...same, upstreamResult: upstream_result, ...(upstream_message !== undefined ? { upstreamMessage: upstream_message } : {}) });
  }
  return out;
}

/**
 * Decisions as text for a human or a model: one line per update, every
 * agent-supplied part (ref names, reasons that quote paths, upstream
 * messages) escaped so it cannot break the line or drive a terminal.
 */
export function formatGitDecisions(decisions: readonly GitDecision[]): string {
  if (!decisions.length) return "No pushes yet.";
  const q = (s: string) => `"${escapeAgentText(s).replace(/"/g, '\\"')}"`;
  return decisions
    .map((d) => {
      const why = d.rule ? ` rule=${d.rule}${d.reason ? ` reason=${q(d.reason)}` : ""}` : "";
      const said = d.upstreamMessage ? ` upstream_said=${q(d.upstreamMessage)}` : "";
      return `${d.time} ${escapeAgentText(d.upstream)} ref=${q(d.ref)} ${d.old.slice(0, 12)}..${d.new.slice(0, 12)} ${d.verdict}${why} upstream=${d.upstreamResult}${said}`;
    })
    .join("\n");
}

export interface GitDecisionQuery extends CtxInput {
  slug: string;
  upstream?: string;
  /** At most this many records, the most recent. */
  tail?: number;
}

export async function readGitDecisions(q: GitDecisionQuery): Promise<{ source: "live" | "file" | "none"; decisions: GitDecision[] }> {
  const ctx = contextOf(q);
  const { meta, layout } = await openBottle(ctx, q.slug);
  if (!meta.services.some((s) => s.service === "git-gate")) {
    throw new BottleError("bad-input", `bottle "${meta.slug}" has no git gate`, "Its profile has no git.upstreams.");
  }
  const r = await readLogs(ctx.engine, meta, layout, { service: "git-gate", grep: `${eventField(LOG_EVENTS.push)},`, tail: MAX_TAIL });
  let decisions = parseGitDecisions(r.lines);
  if (q.upstream) decisions = decisions.filter((d) => d.upstream === q.upstream);
  return { source: r.source, decisions: decisions.slice(-(q.tail ?? 100)) };
}
