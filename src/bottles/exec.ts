// exec (SPEC §6): run a command in the agent, capture exit code, capped
// output and duration, and keep a transcript in the state dir.
import { promises as fs } from "node:fs";
import { z } from "zod";
import { BottleError } from "../errors.js";
import { ENV_NAME_RE } from "../manifest/index.js";
import { contextOf, type CtxInput } from "./context.js";
import { openBottle } from "./handle.js";

export const MAX_EXEC_TIMEOUT_MS = 6 * 60 * 60 * 1000;
export const OUTPUT_CAP = 256 * 1024;

export interface ExecOptions extends CtxInput {
  timeoutMs?: number;
  stdin?: string;
  /** Extra env for the command. Values go through the subprocess env, never argv. */
  vars?: Record<string, string>;
  signal?: AbortSignal;
}

/** What bottle_exec returns as structuredContent and `bottle exec --json` prints. */
export const execOutputSchema = z.object({ exitCode: z.number(), stdout: z.string(), stderr: z.string(), truncated: z.boolean(), timedOut: z.boolean(), durationMs: z.number() });
export type ExecResult = z.output<typeof execOutputSchema>;

const cap = (s: string) => (s.length > OUTPUT_CAP ? { text: s.slice(-OUTPUT_CAP), cut: true } : { text: s, cut: false });

export async function execInBottle(slug: string, argv: string[], o: ExecOptions = {}): Promise<ExecResult> {
  const ctx = contextOf(o);
  const { meta, layout, project } = await openBottle(ctx, slug);
  if (meta.state !== "running") throw new BottleError("conflict", `bottle "${meta.slug}" is ${meta.state}, not running`, "Start it with bottle_start first.");
  if (!argv.length) throw new BottleError("bad-input", "argv must name a command to run");
  const timeout = o.timeoutMs ?? 600_000;
  if (!Number.isInteger(timeout) || timeout < 1 || timeout > MAX_EXEC_TIMEOUT_MS) throw new BottleError("bad-input", `timeout must be between 1 ms and ${MAX_EXEC_TIMEOUT_MS} ms`);
  for (const name of Object.keys(o.vars ?? {})) {
    if (!ENV_NAME_RE.test(name)) throw new BottleError("bad-input", `invalid env name "${name}"`);
  }
  const t0 = Date.now();
  const r = await ctx.engine.exec(project, {
    service: "agent",
    argv,
    timeoutMs: timeout,
    ...(o.vars ? { env: o.vars } : {}),
    ...(o.stdin !== undefined ? { stdin: o.stdin } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  const out = cap(r.stdout);
  const errOut = cap(r.stderr);
  const result: ExecResult = { exitCode: r.exitCode, stdout: out.text, stderr: errOut.text, truncated: out.cut || errOut.cut, timedOut: r.timedOut, durationMs: Date.now() - t0 };
  const record = { at: new Date(t0).toISOString(), argv, envNames: Object.keys(o.vars ?? {}), ...result };
  await fs.appendFile(layout.execLog, `${JSON.stringify(record)}\n`, { mode: 0o600 }).catch(() => {});
  return result;
}
