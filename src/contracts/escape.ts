// Agent-supplied text made safe to print: quoted for people and models,
// escaped inside JSON for files someone may `cat` or `tail -f`.

/**
 * Characters that must never reach a terminal or a reader raw: C0/C1
 * controls and DEL (terminal escapes, CSI as 0x9b), format characters
 * (bidi overrides, zero-width), line/paragraph separators, lone surrogates.
 */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;

const hex = (n: number, w: number) => n.toString(16).padStart(w, "0");

/** `s` as a double-quoted one-line string: `\` and `"` escaped, controls shown as \n, \x1b, \u{202e}. */
export function quote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === "\\") out += "\\\\";
    else if (ch === '"') out += '\\"';
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (UNSAFE.test(ch)) out += cp < 0x100 ? `\\x${hex(cp, 2)}` : `\\u{${hex(cp, 4)}}`;
    else out += ch;
  }
  return `${out}"`;
}

const UNSAFE_IN_JSON = /[\u007f-\u009f\p{Cf}\p{Zl}\p{Zp}]/gu;

/**
 * JSON text that is also safe to print: JSON.stringify escapes C0 controls
 * but leaves DEL, C1 (0x9b is CSI on many terminals), bidi overrides and
 * U+2028 raw. Those are written as \uXXXX too; parsing gives the same value.
 */
export function safeJson(v: unknown, indent?: number): string {
  return JSON.stringify(v, null, indent).replace(UNSAFE_IN_JSON, (ch) =>
    ch
      .split("")
      .map((u) => `\\u${hex(u.charCodeAt(0), 4)}`)
      .join(""),
  );
}

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
