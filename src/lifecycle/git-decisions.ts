// The git gate's push decisions as records, parsed from its JSON log lines
// (live while the bottle runs, from compose.log after stop).
import { z } from "zod";
import { BottleError } from "../errors.js";
import { MAX_TAIL, readLogs } from "./logs.js";
import type { Metadata } from "./metadata.js";

export const gitDecisionSchema = z.object({
  time: z.string(),
  push: z.string().describe("Id shared by the ref updates of one push."),
  upstream: z.string(),
  ref: z.string(),
  old: z.string(),
  new: z.string(),
  change: z.enum(["create", "update", "delete"]),
  verdict: z.enum(["accepted", "refused"]),
  rule: z.string().optional().describe("The rule that refused the update: protected, push_refs, allow_force, allow_delete, max_push_bytes, secret_scan, upstream or atomic."),
  reason: z.string().optional(),
  upstreamResult: z.enum(["ok", "refused", "not-attempted"]),
  upstreamMessage: z.string().optional(),
  bytes: z.number().optional(),
  ms: z.record(z.string(), z.number()).optional(),
});

export type GitDecision = z.output<typeof gitDecisionSchema>;

/** The gate's JSON log line: the same fields, in its snake_case, plus ts/mode/event. */
const logLine = gitDecisionSchema
  .omit({ time: true, upstreamResult: true, upstreamMessage: true })
  .extend({
    ts: z.string(),
    mode: z.literal("git-gate"),
    event: z.literal("push"),
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

export interface GitDecisionQuery {
  upstream?: string;
  /** At most this many records, the most recent. */
  tail?: number;
}

export async function readGitDecisions(meta: Metadata, stateDir: string, q: GitDecisionQuery = {}): Promise<{ source: "live" | "file" | "none"; decisions: GitDecision[] }> {
  if (!meta.services.some((s) => s.service === "git-gate")) {
    throw new BottleError("bad-input", `bottle "${meta.slug}" has no git gate`, "Its profile has no git.upstreams.");
  }
  const r = await readLogs(meta, stateDir, { service: "git-gate", grep: '"event":"push",', tail: MAX_TAIL });
  let decisions = parseGitDecisions(r.lines);
  if (q.upstream) decisions = decisions.filter((d) => d.upstream === q.upstream);
  return { source: r.source, decisions: decisions.slice(-(q.tail ?? 100)) };
}
