// Subprocesses of the gate: git (and ssh, through git). Bounded by a timeout,
// output captured; stdin optional.
import { spawn } from "node:child_process";
import { lastLines } from "../kit/text.js";

export interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface GitOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string;
  timeoutMs?: number;
}

export function git(args: string[], o: GitOptions = {}): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("git", args, { cwd: o.cwd, env: o.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill("SIGKILL"), o.timeoutMs ?? 300_000);
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") });
    });
    child.stdin.on("error", () => {});
    child.stdin.end(o.input ?? "");
  });
}

/** Like `git`, but a non-zero exit throws with the last stderr lines. */
export async function gitOk(args: string[], o: GitOptions = {}): Promise<string> {
  const r = await git(args, o);
  if (r.code !== 0) throw new Error(`git ${args[0]} failed (exit ${r.code}): ${lastLines(r.stderr, 5)}`);
  return r.stdout;
}
