// What every verb shares: exit codes, printing, argument helpers.
import { BottleError } from "../errors.js";

/** Exit codes: scripts can tell "no such thing" from "it failed". */
export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3 } as const;

/** One verb of `bottle`: its usage line(s) and what it does; returns the exit code (-1: keep running). */
export interface Verb {
  name: string;
  aliases?: string[];
  usage: string;
  run(args: string[]): Promise<number>;
}

/** `--json`: the tool's structuredContent, as JSON; else the human text. */
export const print = (json: boolean, data: unknown, human: string) => process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : human.endsWith("\n") ? human : `${human}\n`);

export function one(positionals: string[], usage: string): string {
  if (positionals.length !== 1) throw new BottleError("bad-input", `usage: ${usage}`);
  return positionals[0]!;
}

/** Continuation lines of a multi-line value, aligned under its first line. */
export const indent = (text: string, by: number) => text.split("\n").join(`\n${" ".repeat(by)}`);

export async function readStdin(): Promise<string> {
  let s = "";
  for await (const chunk of process.stdin) s += chunk;
  return s;
}

export function exitCodeFor(err: BottleError): number {
  switch (err.code) {
    case "unknown-profile":
    case "unknown-slug":
      return EXIT.notFound;
    case "bad-input":
    case "manifest":
      return EXIT.usage;
    default:
      return EXIT.failed;
  }
}

/** Abort on Ctrl-C: the core stops what it started (a start rolls back). */
export function interruptSignal(): AbortSignal {
  const ac = new AbortController();
  process.once("SIGINT", () => ac.abort());
  return ac.signal;
}
