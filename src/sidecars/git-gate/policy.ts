// The push policy, pure: given one ref update and what git says about it,
// which rule (if any) refuses it. The hook gathers the facts; this decides.
import type { GitGatePolicy } from "../../contracts/git-gate.js";
import { pushedRefError } from "./refname.js";

export const ZERO_SHA = /^0+$/;

export interface RefUpdate {
  ref: string;
  old: string;
  new: string;
  /** The name's bytes as git sent them (the string above is their UTF-8 reading). */
  raw?: Buffer;
}

export type RefChange = "create" | "update" | "delete";

/**
 * Rule names as they appear in refusals and in the decision log. The hook
 * decides the policy ones; the gate's server records what git itself refused
 * before or around the hook (fsck, unpack, git, hook_error, timeout, protocol).
 */
export type Rule =
  | "ref_format"
  | "protected"
  | "push_refs"
  | "allow_delete"
  | "allow_force"
  | "stale"
  | "max_push_bytes"
  | "secret_scan"
  | "upstream"
  | "atomic"
  | "fsck"
  | "unpack"
  | "git"
  | "hook_error"
  | "timeout"
  | "protocol";

export interface Refusal {
  rule: Rule;
  reason: string;
}

export function changeOf(u: Pick<RefUpdate, "old" | "new">): RefChange {
  if (ZERO_SHA.test(u.old)) return "create";
  if (ZERO_SHA.test(u.new)) return "delete";
  return "update";
}

/**
 * Ref patterns, matched one path segment at a time: in a segment, `*` matches
 * any run of characters other than "/"; a segment that is exactly `**`
 * matches one or more whole segments. A pattern never matches an empty
 * segment, "." or "..", so `refs/heads/agent/*` does not reach
 * `refs/heads/agent/../main` (which git refuses as a name anyway).
 */
export function refMatches(pattern: string, ref: string): boolean {
  return matchSegments(pattern.split("/"), 0, ref.split("/"), 0);
}

function matchSegments(p: string[], i: number, r: string[], j: number): boolean {
  if (i === p.length) return j === r.length;
  if (j === r.length) return false;
  if (!okSegment(r[j]!)) return false;
  if (p[i] === "**") {
    // One segment here, then either stop consuming with ** or keep going.
    return matchSegments(p, i + 1, r, j + 1) || matchSegments(p, i, r, j + 1);
  }
  return segmentMatches(p[i]!, r[j]!) && matchSegments(p, i + 1, r, j + 1);
}

const okSegment = (s: string) => s !== "" && s !== "." && s !== "..";

const segmentCache = new Map<string, RegExp>();
function segmentMatches(pattern: string, segment: string): boolean {
  if (!pattern.includes("*")) return pattern === segment;
  let re = segmentCache.get(pattern);
  if (!re) {
    re = new RegExp(
      `^${pattern
        .split("*")
        .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
        .join("[^/]*")}$`,
      "s",
    );
    segmentCache.set(pattern, re);
  }
  return re.test(segment);
}

/**
 * A protected pattern guards the refs it matches and everything below them:
 * `refs/heads/release/*` also guards `refs/heads/release/1.x/hotfix`.
 * (Protection errs on the side of more.)
 */
export function protects(pattern: string, ref: string): boolean {
  const segs = ref.split("/");
  for (let n = segs.length; n >= 1; n--) if (matchSegments(pattern.split("/"), 0, segs.slice(0, n), 0)) return true;
  return false;
}

export class HookInputError extends Error {}

const HEX40 = /^[0-9a-f]{40}$/;
const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Parse pre-receive's stdin strictly: lines of exactly
 * "<old> <new> <ref>\n" with 40- or 64-hex ids (one length for the whole
 * push) and a non-empty name. The name is everything after the second space,
 * spaces included, so a name with a space is judged (and refused) whole
 * instead of being cut at the space. Anything else throws.
 */
export function parseUpdates(stdin: string | Buffer): RefUpdate[] {
  const b = typeof stdin === "string" ? Buffer.from(stdin, "utf8") : stdin;
  if (b.length === 0) throw new HookInputError("the hook received no ref updates");
  if (b[b.length - 1] !== 0x0a) throw new HookInputError("the hook's input does not end with a newline");
  const out: RefUpdate[] = [];
  let idLen: number | undefined;
  let start = 0;
  while (start < b.length) {
    const nl = b.indexOf(0x0a, start);
    const line = b.subarray(start, nl);
    const n = out.length + 1;
    const sp1 = line.indexOf(0x20);
    const len = sp1 === 40 || sp1 === 64 ? sp1 : -1;
    if (len < 0 || (idLen !== undefined && len !== idLen)) throw new HookInputError(`input line ${n} does not start with an object id and a space`);
    idLen = len;
    const old = line.subarray(0, len).toString("latin1");
    const next = line.subarray(len + 1, 2 * len + 1).toString("latin1");
    const hex = len === 40 ? HEX40 : HEX64;
    if (!hex.test(old) || !hex.test(next) || line[2 * len + 1] !== 0x20) throw new HookInputError(`input line ${n} is not "<old> <new> <ref>"`);
    const raw = Buffer.from(line.subarray(2 * len + 2));
    if (raw.length === 0) throw new HookInputError(`input line ${n} has no ref name`);
    out.push({ old, new: next, ref: raw.toString("utf8"), raw });
    start = nl + 1;
  }
  return out;
}

/** Why git would refuse this update's name, as a refusal. */
export function checkRefName(u: RefUpdate, label: string): Refusal | undefined {
  const err = pushedRefError(u.raw ?? u.ref, changeOf(u) === "delete");
  return err ? { rule: "ref_format", reason: `${label} is not a valid ref name: ${err}` } : undefined;
}

/**
 * The first rule that refuses this update. `fastForward` says whether an
 * update's new commit descends from the old one (ignored for create/delete).
 * The name must already have passed checkRefName.
 */
export function checkRef(u: RefUpdate, policy: GitGatePolicy, fastForward: boolean): Refusal | undefined {
  const guard = policy.protected.find((p) => protects(p, u.ref));
  if (guard) return { rule: "protected", reason: `${u.ref} is protected (policy.protected: ${guard})` };
  if (!policy.push_refs.some((p) => refMatches(p, u.ref))) {
    return { rule: "push_refs", reason: `${u.ref} is not a ref the agent may push (policy.push_refs: ${policy.push_refs.join(", ") || "none"})` };
  }
  const change = changeOf(u);
  if (change === "delete" && !policy.allow_delete) return { rule: "allow_delete", reason: `deleting ${u.ref} is not allowed (policy.allow_delete is false)` };
  if (change === "update" && !fastForward && !policy.allow_force) {
    return { rule: "allow_force", reason: `${u.ref} would not fast-forward (${short(u.old)} is not an ancestor of ${short(u.new)}); force pushes are not allowed (policy.allow_force is false)` };
  }
  return undefined;
}

/**
 * The policy applied to where the update really lands upstream: when the
 * pushed name is a symbolic ref on the upstream, the upstream moves its
 * target, so the target must pass too.
 */
export function checkSymrefTarget(u: RefUpdate, target: string, policy: GitGatePolicy, fastForward: boolean): Refusal | undefined {
  const r = checkRef({ ...u, ref: target }, policy, fastForward);
  return r ? { rule: r.rule, reason: `${u.ref} is a symbolic ref to ${target} on the upstream, so the push would move ${target}: ${r.reason}` } : undefined;
}

export const short = (sha: string) => sha.slice(0, 12);
