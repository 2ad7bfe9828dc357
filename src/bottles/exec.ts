// exec (SPEC §6): run a command in the agent, capture exit code, capped
// output and duration, and keep a transcript in the state dir.
import { promises as fs } from "node:fs";
import nodePath from "node:path";
import { compose } from "../engine/compose.js";
import { BottleError } from "../errors.js";
import { ENV_NAME_RE } from "../manifest/index.js";
import { stateRoot } from "../state/root.js";
import { requireBottle } from "../state/lookup.js";

export const MAX_EXEC_TIMEOUT_MS = 6 * 60 * 60 * 1000;
export const OUTPUT_CAP = 256 * 1024;

export interface ExecOptions {
  timeoutMs?: number;
  stdin?: string;
  /** Extra env for the command. Values go through the subprocess env, never argv. */
  env?: Record<string, string>;
  signal?: AbortSignal;
  hostEnv?: NodeJS.ProcessEnv;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  truncated: boolean;
  timedOut: boolean;
  durationMs: number;
}

const cap = (s: string) => (s.length > OUTPUT_CAP ? { text: s.slice(-OUTPUT_CAP), cut: true } : { text: s, cut: false });

export async function execInBottle(slug: string, argv: string[], o: ExecOptions = {}): Promise<ExecResult> {
  const root = stateRoot(o.hostEnv);
  const meta = requireBottle(root, slug);
  if (meta.state !== "running") throw new BottleError("conflict", `bottle "${meta.slug}" is ${meta.state}, not running`, "Start it with bottle_start first.");
  if (!argv.length) throw new BottleError("bad-input", "argv must name a command to run");
  const timeout = o.timeoutMs ?? 600_000;
  if (!Number.isInteger(timeout) || timeout < 1 || timeout > MAX_EXEC_TIMEOUT_MS) throw new BottleError("bad-input", `timeout must be between 1 ms and ${MAX_EXEC_TIMEOUT_MS} ms`);
  const envArgs: string[] = [];
  for (const name of Object.keys(o.env ?? {})) {
    if (!ENV_NAME_RE.test(name)) throw new BottleError("bad-input", `invalid env name "${name}"`);
    envArgs.push("-e", name); // bare name: docker reads the value from our env
  }
  const t0 = Date.now();
  const r = await compose({ project: meta.project, file: meta.composeFile }, ["exec", "-T", ...envArgs, "agent", ...argv], {
    timeout,
    reject: false,
    ...(o.env ? { env: o.env } : {}),
    ...(o.stdin !== undefined ? { input: o.stdin } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  }).catch((err: unknown) => {
    if (err instanceof BottleError && /timed out/.test(err.message)) return { exitCode: 124, stdout: "", stderr: err.message, timedOut: true };
    throw err;
  });
  const out = cap(r.stdout);
  const errOut = cap(r.stderr);
  const result: ExecResult = { exitCode: r.exitCode, stdout: out.text, stderr: errOut.text, truncated: out.cut || errOut.cut, timedOut: r.timedOut, durationMs: Date.now() - t0 };
  const record = { at: new Date(t0).toISOString(), argv, envNames: Object.keys(o.env ?? {}), ...result };
  await fs.appendFile(nodePath.join(root, meta.slug, "exec.jsonl"), `${JSON.stringify(record)}\n`, { mode: 0o600 }).catch(() => {});
  return result;
}
