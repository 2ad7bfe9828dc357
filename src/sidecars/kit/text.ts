// Text helpers the sidecars share.

/** The last `n` lines of a command's output (for error messages). */
export function lastLines(text: string, n: number): string {
  return text.trimEnd().split("\n").slice(-n).join("\n");
}
