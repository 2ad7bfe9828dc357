// The push policy, pure: given one ref update and what git says about it,
// which rule (if any) refuses it. The hook gathers the facts; this decides.
import type { GitGatePolicy } from "../../sidecar-config/git-gate.js";

export const ZERO_SHA = /^0+$/;

export interface RefUpdate {
  ref: string;
  old: string;
  new: string;
}

export type RefChange = "create" | "update" | "delete";

/** Rule names as they appear in refusals and in the decision log. */
export type Rule = "protected" | "push_refs" | "allow_delete" | "allow_force" | "max_push_bytes" | "secret_scan" | "upstream" | "atomic";

export interface Refusal {
  rule: Rule;
  reason: string;
}

export function changeOf(u: RefUpdate): RefChange {
  if (ZERO_SHA.test(u.old)) return "create";
  if (ZERO_SHA.test(u.new)) return "delete";
  return "update";
}

/** Ref patterns as in refspecs: `*` matches any run of characters, `/` included. */
export function refMatches(pattern: string, ref: string): boolean {
  const re = new RegExp(`^${pattern.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);
  return re.test(ref);
}

/** Parse pre-receive's stdin: "<old> <new> <ref>" per line. */
export function parseUpdates(stdin: string): RefUpdate[] {
  return stdin
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const [old, next, ref] = l.split(/\s+/);
      if (!old || !next || !ref) throw new Error(`unexpected pre-receive input line: ${JSON.stringify(l)}`);
      return { old, new: next, ref };
    });
}

/**
 * The first rule that refuses this update. `fastForward` says whether an
 * update's new commit descends from the old one (ignored for create/delete).
 */
export function checkRef(u: RefUpdate, policy: GitGatePolicy, fastForward: boolean): Refusal | undefined {
  const guard = policy.protected.find((p) => refMatches(p, u.ref));
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

export const short = (sha: string) => sha.slice(0, 12);
