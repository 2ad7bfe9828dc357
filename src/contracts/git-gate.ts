// The git gate's config file. Rendered on the host from the plan, validated
// again by the gate at start and by its pre-receive hook on every push (the
// hook rereads it, so a policy change applies to the next push).
import { z } from "zod";
import { REF_PATTERN_RE, UPSTREAM_NAME_RE } from "./patterns.js";

const refPattern = z.string().regex(REF_PATTERN_RE);

export const gitGatePolicySchema = z.strictObject({
  /**
   * Refs the agent may push, matched per path segment: `*` matches within one
   * segment (never "/"), a whole `**` segment matches one or more segments.
   */
  push_refs: z.array(refPattern),
  /** Refs nobody pushes through the gate, whatever push_refs says; each also guards the refs below it. */
  protected: z.array(refPattern),
  allow_force: z.boolean(),
  allow_delete: z.boolean(),
  /** Largest push: git stops receiving a bigger pack while it streams (receive.maxInputSize), the hook checks the received size again. */
  max_push_bytes: z.number().int().positive(),
});

export const gitGateConfigSchema = z.strictObject({
  version: z.literal(1),
  port: z.number().int().min(1).max(65535),
  upstreams: z.array(
    z.strictObject({
      name: z.string().regex(UPSTREAM_NAME_RE),
      url: z.string().min(1),
      identity_file: z.string().min(1),
      known_hosts_file: z.string().min(1),
      policy: gitGatePolicySchema,
    }),
  ),
});

export type GitGateConfig = z.output<typeof gitGateConfigSchema>;
export type GitGateUpstream = GitGateConfig["upstreams"][number];
export type GitGatePolicy = z.output<typeof gitGatePolicySchema>;

/**
 * Agent-supplied text (ref names, paths, git's messages about them) made safe
 * to print on one line: control and format characters (terminal escapes,
 * newlines, C1 controls, bidirectional overrides, zero-width characters),
 * line and paragraph separators and lone surrogates are shown as escapes
 * (ESC as \x1b, U+202E as \u{202e}), and a backslash as \\, so a record
 * cannot break its line, repaint a terminal or fake what is around it.
 */
export function escapeAgentText(s: string): string {
  return s.replace(/[\\\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu, (c) => {
    if (c === "\\") return "\\\\";
    const code = c.codePointAt(0)!;
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u{${code.toString(16).padStart(4, "0")}}`;
  });
}
