// The one subprocess wrapper (docker, docker compose, iptables). Every call
// has a timeout and a kill fallback, accepts an abort signal, and reports
// failures as a short message plus the last lines of stderr (not a wall of text).
import { execa, type Options } from "execa";
import { BottleError } from "../errors.js";

export interface RunOptions {
  /** Milliseconds; every docker call is bounded. */
  timeout?: number;
  signal?: AbortSignal;
  /** Extra env for the subprocess (e.g. secrets compose must inherit). Never logged. */
  env?: Record<string, string | undefined>;
  input?: string;
  cwd?: string;
  /** Don't throw on a non-zero exit; return it. */
  reject?: boolean;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

const DEFAULT_TIMEOUT = 120_000;

export function docker(args: string[], o: RunOptions = {}): Promise<RunResult> {
  return run("docker", args, o);
}

export async function run(file: string, args: string[], o: RunOptions = {}): Promise<RunResult> {
  const opts: Options = {
    timeout: o.timeout ?? DEFAULT_TIMEOUT,
    forceKillAfterDelay: 2_000,
    reject: false,
    stripFinalNewline: true,
    ...(o.signal ? { cancelSignal: o.signal } : {}),
    ...(o.env ? { env: o.env, extendEnv: true } : {}),
    ...(o.input !== undefined ? { input: o.input } : { stdin: "ignore" as const }),
    ...(o.cwd ? { cwd: o.cwd } : {}),
  };
  const r = await execa(file, args, opts);
  const result: RunResult = {
    exitCode: typeof r.exitCode === "number" ? r.exitCode : -1,
    stdout: String(r.stdout ?? ""),
    stderr: String(r.stderr ?? ""),
    timedOut: Boolean(r.timedOut),
  };
  if ((r as { code?: string }).code === "ENOENT") {
    throw file === "docker"
      ? new BottleError("docker", "the docker CLI was not found on PATH", "Install Docker (Engine or Desktop) with Compose v2, then run `bottle doctor`.")
      : new BottleError("internal", `${file} was not found on PATH`);
  }
  // Name the subcommand: "docker compose up", not "docker compose -p".
  const what = [file, ...args.filter((a, i) => i === 0 || (!a.startsWith("-") && !/^-[pf]$/.test(args[i - 1] ?? ""))).slice(0, 2)].join(" ");
  const hint = file === "docker" ? dockerHint(result.stderr) : undefined;
  if (r.isCanceled) throw new BottleError("docker", `${what} was cancelled`);
  if (result.timedOut) throw new BottleError("docker", `${what} timed out after ${Math.round((o.timeout ?? DEFAULT_TIMEOUT) / 1000)}s`, hint);
  if (result.exitCode !== 0 && o.reject !== false) throw new BottleError("docker", `${what} failed (exit ${result.exitCode}): ${lastLines(result.stderr, 8)}`, hint);
  return result;
}

export function lastLines(text: string, n: number): string {
  return text.trimEnd().split("\n").slice(-n).join("\n");
}

/** Recognise "the daemon is not there" and say how to check. */
export function dockerHint(stderr: string): string | undefined {
  if (/Cannot connect to the Docker daemon|error during connect|connect: no such file|Is the docker daemon running|dial unix/i.test(stderr)) {
    return "Docker is unreachable: check that the engine is running (`docker info`), that DOCKER_HOST / the docker context point at it, and run `bottle doctor`.";
  }
  return undefined;
}

/**
 * A long-running docker command whose stdout is streamed line by line (e.g.
 * `compose logs -f`). Ends when the command does or when `signal` aborts.
 */
export async function dockerLines(args: string[], onLine: (line: string) => void, signal?: AbortSignal): Promise<number> {
  const child = execa("docker", args, { reject: false, stdin: "ignore", forceKillAfterDelay: 2_000, ...(signal ? { cancelSignal: signal } : {}) });
  for await (const line of child) onLine(String(line));
  const r = await child;
  return typeof r.exitCode === "number" ? r.exitCode : -1;
}
