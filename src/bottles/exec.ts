// exec (SPEC §6): run a command in the agent, capture exit code, capped
// output and duration, and keep a transcript in the state dir.
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import { z } from "zod";
import { quote } from "../contracts/escape.js";
import { BottleError } from "../errors.js";
import { ENV_NAME_RE } from "../manifest/index.js";
import type { ProjectRef } from "../engine/index.js";
import { logger } from "../log.js";
import { type Ctx, contextOf, type CtxInput } from "./context.js";
import { openBottle } from "./handle.js";
import { KILL_BY_ENV_FN } from "./kill-by-env.js";

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

/** The env name an exec'd command (and so everything it starts) carries, set to a fresh id per exec. */
export const EXEC_ENV = "BOTTLE_EXEC_ID";

/** Shell run as `sh -c KILL_BY_ENV sh NAME=ID`: SIGKILL every process whose environment holds NAME=ID. */
export const KILL_BY_ENV = `${KILL_BY_ENV_FN}kenv KILL "$1"
`;

async function killLeftovers(ctx: Ctx, project: ProjectRef, execId: string): Promise<void> {
  await ctx.engine.exec(project, { service: "agent", argv: ["sh", "-c", KILL_BY_ENV, "sh", `${EXEC_ENV}=${execId}`], timeoutMs: 15_000 }).catch((err: Error) => {
    logger.warn({ slug: project.slug, err: err.message }, "could not kill what a stopped exec left running");
  });
}

/** Linux refuses one argument or env entry over 128 KiB (MAX_ARG_STRLEN), in bytes with its NUL. */
export const MAX_ARG_BYTES = 128 * 1024;
/** What argv and env may take together: ARG_MAX is usually 2 MiB, and the docker CLI's own env counts against it. */
export const MAX_ARGV_ENV_BYTES = 1024 * 1024;

/**
 * Refuse, as bad input with the reason, an argv or env the spawn would
 * refuse (E2BIG, or NUL) only after we wrote records or with no reason.
 * Large input goes through stdin.
 */
export function requireSpawnable(argv: readonly string[], vars: Readonly<Record<string, string>> = {}): void {
  const entries = [...argv.map((a, i) => [`argv[${i}]`, a] as const), ...Object.entries(vars).map(([k, v]) => [`env ${k}`, `${k}=${v}`] as const)];
  let total = 0;
  for (const [what, text] of entries) {
    if (text.includes("\0")) throw new BottleError("bad-input", `${what} must not contain NUL bytes`);
    const bytes = Buffer.byteLength(text) + 1;
    if (bytes > MAX_ARG_BYTES) throw new BottleError("bad-input", `${what} is ${bytes - 1} bytes; one argument or env entry can be at most ${MAX_ARG_BYTES - 1}`, "Pass large input as stdin.");
    total += bytes;
  }
  if (total > MAX_ARGV_ENV_BYTES) throw new BottleError("bad-input", `argv and env together are ${total} bytes, over ${MAX_ARGV_ENV_BYTES}`, "Pass large input as stdin.");
}

/** The exec transcript's size at which it is rotated (one older file kept): execs are unlimited, host disk is not. */
export const EXEC_LOG_MAX_BYTES = 32 * 1024 * 1024;

/** Append a record; a transcript over `maxBytes` first becomes `<file>.1` (replacing the older one). */
export async function appendTranscript(file: string, line: string, maxBytes = EXEC_LOG_MAX_BYTES): Promise<void> {
  const size = await fs.stat(file).then(
    (st) => st.size,
    () => 0,
  );
  if (size + Buffer.byteLength(line) > maxBytes && size > 0) await fs.rename(file, `${file}.1`).catch(() => {});
  await fs.appendFile(file, line, { mode: 0o600 });
}

const cap = (s: string) => (s.length > OUTPUT_CAP ? { text: s.slice(-OUTPUT_CAP), cut: true } : { text: s, cut: false });

export async function execInBottle(slug: string, argv: string[], o: ExecOptions = {}): Promise<ExecResult> {
  const ctx = contextOf(o);
  const { meta, layout, project } = await openBottle(ctx, slug);
  if (meta.state !== "running") throw new BottleError("conflict", `bottle "${meta.slug}" is ${meta.state}, not running`, "Start it with bottle_start first.");
  if (!argv.length) throw new BottleError("bad-input", "argv must name a command to run");
  const timeout = o.timeoutMs ?? 600_000;
  if (!Number.isInteger(timeout) || timeout < 1 || timeout > MAX_EXEC_TIMEOUT_MS) throw new BottleError("bad-input", `timeout must be between 1 ms and ${MAX_EXEC_TIMEOUT_MS} ms`);
  for (const name of Object.keys(o.vars ?? {})) {
    if (!ENV_NAME_RE.test(name)) throw new BottleError("bad-input", `invalid env name ${quote(name)}`);
  }
  requireSpawnable(argv, o.vars);
  const t0 = Date.now();
  // Killing the `docker exec` client (timeout, cancelled request, server
  // gone) leaves the command running in the container: docker does not
  // forward it. The command and everything it starts carry this id in their
  // environment, so what outlives the client is found and killed.
  const execId = `x${t0.toString(36)}-${randomBytes(3).toString("hex")}`;
  const vars = { ...o.vars, [EXEC_ENV]: execId };
  let r: Awaited<ReturnType<typeof ctx.engine.exec>>;
  try {
    r = await ctx.engine.exec(project, {
      service: "agent",
      argv,
      timeoutMs: timeout,
      env: vars,
      ...(o.stdin !== undefined ? { stdin: o.stdin } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
  } catch (err) {
    await killLeftovers(ctx, project, execId);
    throw err;
  }
  if (r.timedOut) await killLeftovers(ctx, project, execId);
  // The docker CLI's own refusal (the agent container stopped or is going away), not the command's exit: nothing ran.
  if (r.exitCode !== 0 && !r.stdout && /^Error response from daemon: [^\n]*\n?$/.test(r.stderr))
    throw new BottleError(
      "conflict",
      `bottle "${meta.slug}": ${r.stderr.trim()}`,
      "Its agent is not running (stopped, or being stopped): see bottle_list; bottle_stop then bottle_start to get a working one.",
    );
  // No exit code: the docker CLI itself could not run or was killed; the command's own result is unknown.
  if (r.exitCode < 0)
    throw new BottleError(
      "docker",
      `docker exec in bottle "${meta.slug}" gave no exit code${r.stderr ? `: ${r.stderr}` : ""}`,
      "Check the bottle with bottle_list and bottle_logs, and Docker with `bottle doctor`.",
    );
  const out = cap(r.stdout);
  const errOut = cap(r.stderr);
  const result: ExecResult = { exitCode: r.exitCode, stdout: out.text, stderr: errOut.text, truncated: out.cut || errOut.cut, timedOut: r.timedOut, durationMs: Date.now() - t0 };
  const record = { at: new Date(t0).toISOString(), argv, envNames: Object.keys(o.vars ?? {}), ...result };
  await appendTranscript(layout.execLog, `${JSON.stringify(record)}\n`).catch(() => {});
  return result;
}
