// The decision record: one "push" log line per ref update, written by the
// hook when it decides and by the gate's server for every update the hook
// did not record (git refused it first, the hook crashed, the push timed
// out). src/lifecycle/git-decisions.ts parses these lines for bottle_git_log.
import { changeOf, type Rule } from "./policy.js";

export type UpstreamResult = "ok" | "refused" | "not-attempted" | "unknown";

export interface PushRecord {
  push: string;
  upstream: string;
  ref: string;
  /** Position of the update in the push as the agent sent it, from 1. */
  index?: number;
  old: string;
  new: string;
  verdict: "accepted" | "refused";
  rule?: Rule;
  reason?: string;
  upstream_result: UpstreamResult;
  upstream_message?: string;
  bytes?: number;
  objects?: number;
  ms?: Record<string, number>;
}

/** The fields of the "push" log event, in the order they are printed. */
export function pushFields(r: PushRecord): Record<string, unknown> {
  return {
    push: r.push,
    upstream: r.upstream,
    ref: r.ref,
    ...(r.index !== undefined ? { index: r.index } : {}),
    old: r.old,
    new: r.new,
    change: changeOf(r),
    verdict: r.verdict,
    ...(r.rule ? { rule: r.rule } : {}),
    ...(r.reason !== undefined ? { reason: r.reason } : {}),
    upstream_result: r.upstream_result,
    ...(r.upstream_message !== undefined ? { upstream_message: r.upstream_message } : {}),
    ...(r.bytes !== undefined ? { bytes: r.bytes } : {}),
    ...(r.objects !== undefined ? { objects: r.objects } : {}),
    ...(r.ms ? { ms: r.ms } : {}),
  };
}

/** Log event the hook sends just before it pushes to the upstream (so a crash after it is known to be ambiguous). */
export const UPSTREAM_PUSH_EVENT = "upstream_push_started";
