// The ref updates of one push, as the gate's server read them from the wire,
// handed to the pre-receive hook in a file. receive-pack prints each update
// to the hook as "<old> <new> <name>\n" without checking the name first, so
// a name holding a newline could pose as two updates; the server's list is
// the one to judge, and the hook's stdin must be consistent with it.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { RUN_DIR } from "./ssh.js";

export const PUSH_ID_ENV = "GIT_GATE_PUSH";
/** Where the server leaves each push's commands; passed to the hook in this env var. */
export const PUSHES_DIR_ENV = "GIT_GATE_PUSHES_DIR";
export const PUSHES_DIR = `${RUN_DIR}/pushes`;

export interface WireCommand {
  old: string;
  new: string;
  /** The name's bytes as sent. */
  raw: Buffer;
}

interface CommandsFile {
  commands: Array<{ old: string; new: string; ref_b64: string }>;
}

const fileOf = (dir: string, id: string) => `${dir}/${id}.json`;

export function writeCommands(id: string, commands: readonly WireCommand[], dir = PUSHES_DIR): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const body: CommandsFile = { commands: commands.map((c) => ({ old: c.old, new: c.new, ref_b64: c.raw.toString("base64") })) };
  writeFileSync(fileOf(dir, id), JSON.stringify(body), { mode: 0o600 });
}

export function readCommands(id: string, dir = PUSHES_DIR): WireCommand[] {
  const f = JSON.parse(readFileSync(fileOf(dir, id), "utf8")) as CommandsFile;
  return f.commands.map((c) => ({ old: c.old, new: c.new, raw: Buffer.from(c.ref_b64, "base64") }));
}

export function removeCommands(id: string, dir = PUSHES_DIR): void {
  rmSync(fileOf(dir, id), { force: true });
}

export const serialize = (c: WireCommand) => Buffer.concat([Buffer.from(`${c.old} ${c.new} `, "latin1"), c.raw, Buffer.from("\n")]);

/**
 * Which of the wire commands the hook's stdin holds, in order. receive-pack
 * leaves out updates git already failed (say, missing objects), so stdin is
 * a subsequence; anything else (a line no command explains) is undefined.
 */
export function matchStdin(stdin: Buffer, commands: readonly WireCommand[]): number[] | undefined {
  const taken: number[] = [];
  let pos = 0;
  for (let i = 0; i < commands.length && pos < stdin.length; i++) {
    const s = serialize(commands[i]!);
    if (stdin.length - pos >= s.length && stdin.subarray(pos, pos + s.length).equals(s)) {
      taken.push(i);
      pos += s.length;
    }
  }
  return pos === stdin.length ? taken : undefined;
}
