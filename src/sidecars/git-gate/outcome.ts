// What became of the updates the hook did not record, from what the gate's
// server saw of a push: the agent's commands, receive-pack's report and
// messages, whether it timed out. Pure, so every path to a refusal (git's
// object checks, its size limit, a hook that died, a timeout) is tested
// without Docker. Git's own messages may echo names, so they pass through
// the secret scanner before they reach a record.
import { escapeAgentText } from "../../contracts/escape.js";
import type { WireCommand } from "./commands.js";
import { displayRef, withholdSecrets } from "./names.js";
import type { Refusal } from "./policy.js";
import type { PushRecord, UpstreamResult } from "./records.js";

export interface ReportStatus {
  /** "ok" or git's unpack error, once receive-pack reported it. */
  unpack?: string;
  /** Per ref name (as sent), in report order: ok, or ng with git's reason. */
  refs: Array<{ ref: string; ok: boolean; reason?: string }>;
}

export interface PushObservation {
  push: string;
  upstream: string;
  commands: readonly WireCommand[];
  /** 1-based indexes of the updates the hook recorded. */
  recorded: ReadonlySet<number>;
  report: ReportStatus;
  /** receive-pack's (and index-pack's) messages to the client, for reasons. */
  messages: string;
  /** Set when the gate stopped the push for taking too long. */
  timedOut?: string;
  /** Set when the agent's request broke the protocol. */
  protocolError?: string;
  /** Set when the gate itself failed while handling the push. */
  internalError?: string;
  /** The hook said it was about to push to the upstream. */
  upstreamStarted: boolean;
  exit: { code: number | null; signal: string | null };
  maxPushBytes: number;
  /** Bytes of pack data received. */
  bytes: number;
}

/** Classify an unpack failure (or git's messages when there was no report). */
export function unpackRefusal(unpack: string | undefined, messages: string, maxPushBytes: number): Refusal {
  const text = `${unpack ?? ""}\n${messages}`;
  if (/pack exceeds maximum allowed size/i.test(text)) {
    return { rule: "max_push_bytes", reason: `the pushed pack is over the limit of ${maxPushBytes} bytes (policy.max_push_bytes); git stopped receiving it` };
  }
  const fsck = /^(?:remote: )?error: (?:object [0-9a-f]+: )?(\w+: .*)$/m.exec(messages) ?? /fsck error.*$/im.exec(text);
  if (fsck || /fsck/i.test(text)) {
    const detail = fsck?.[1] ?? fsck?.[0] ?? unpack ?? "";
    return { rule: "fsck", reason: `git's object checks (receive.fsckObjects) refused the pushed objects: ${withholdSecrets(detail.trim().slice(0, 300))}` };
  }
  const last = messages.trim().split("\n").pop() ?? "";
  return { rule: "unpack", reason: `git could not take the pushed objects: ${withholdSecrets(`${unpack ?? "no report"}${last ? `; ${last}` : ""}`.slice(0, 300))}` };
}

const NOTHING_UPSTREAM = "nothing was pushed upstream";
const MAYBE_UPSTREAM = "the gate was already pushing to the upstream, which may have received it";

/** A record for every update the hook did not record. */
export function unrecordedOutcome(o: PushObservation): PushRecord[] {
  const out: PushRecord[] = [];
  const upstream: UpstreamResult = o.upstreamStarted ? "unknown" : "not-attempted";
  const tail = o.upstreamStarted ? MAYBE_UPSTREAM : NOTHING_UPSTREAM;
  // Report lines in command order (git reports every command it read).
  let at = 0;
  o.commands.forEach((c, i) => {
    const index = i + 1;
    const name = c.raw.toString("utf8");
    let reported: ReportStatus["refs"][number] | undefined;
    for (let k = at; k < o.report.refs.length; k++) {
      if (o.report.refs[k]!.ref === name) {
        reported = o.report.refs[k];
        at = k + 1;
        break;
      }
    }
    if (o.recorded.has(index)) return;
    const base = { push: o.push, upstream: o.upstream, ref: displayRef(name, index), old: c.old, new: c.new, bytes: o.bytes, index };
    let refusal: Refusal;
    if (o.internalError) refusal = { rule: "hook_error", reason: `${o.internalError}; ${tail}` };
    else if (o.protocolError) refusal = { rule: "protocol", reason: `${o.protocolError}; ${NOTHING_UPSTREAM}` };
    else if (o.timedOut) refusal = { rule: "timeout", reason: `${o.timedOut}; ${tail}` };
    else if (o.report.unpack !== undefined && o.report.unpack !== "ok") {
      const r = unpackRefusal(o.report.unpack, o.messages, o.maxPushBytes);
      refusal = { rule: r.rule, reason: `${r.reason}; ${NOTHING_UPSTREAM}` };
    } else if (reported?.ok) {
      out.push({ ...base, verdict: "accepted", reason: "git applied this update without a decision from the gate's hook", upstream_result: "unknown" });
      return;
    } else if (reported && /hook declined/.test(reported.reason ?? "")) {
      refusal = { rule: "hook_error", reason: `the gate's pre-receive check ended without a decision (it failed or was killed); ${tail}` };
    } else if (reported) {
      refusal = { rule: "git", reason: `git refused the update: ${withholdSecrets(reported.reason ?? "no reason given")}; ${NOTHING_UPSTREAM}` };
    } else if (o.exit.code !== 0 || o.exit.signal) {
      const r = /pack exceeds|fsck|error: object/i.test(o.messages) ? unpackRefusal(undefined, o.messages, o.maxPushBytes) : undefined;
      refusal = r
        ? { rule: r.rule, reason: `${r.reason}; ${NOTHING_UPSTREAM}` }
        : { rule: "git", reason: `the push ended without a report from git (receive-pack ${o.exit.signal ? `killed by ${o.exit.signal}` : `exit ${o.exit.code}`}); ${tail}` };
    } else {
      refusal = { rule: "git", reason: `the push ended without a report from git and without a decision from the gate's hook; ${tail}` };
    }
    out.push({ ...base, verdict: "refused", rule: refusal.rule, reason: refusal.reason, upstream_result: refusal.rule === "timeout" || refusal.rule === "hook_error" ? upstream : "not-attempted" });
  });
  return out;
}

/** The line the gate adds to git's messages to the agent when it records a refusal the hook did not make. */
export function agentNotice(upstream: string, records: readonly PushRecord[]): string | undefined {
  const refused = records.filter((r) => r.verdict === "refused");
  if (!refused.length) return undefined;
  const first = refused[0]!;
  const more = refused.length > 1 ? ` (and ${refused.length - 1} more ref${refused.length > 2 ? "s" : ""})` : "";
  return `bot-bottle git-gate: push to "${upstream}" refused: ${escapeAgentText(first.ref)}${more}: refused by rule "${first.rule}": ${escapeAgentText(first.reason ?? "")}`;
}
