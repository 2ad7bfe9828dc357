// Logs: live from compose while running, from compose.log after stop.
import { promises as fs } from "node:fs";
import { compose } from "../engine/compose.js";
import { dockerLines } from "../engine/run.js";
import { BottleError } from "../errors.js";
import type { Metadata } from "../state/metadata.js";
import nodePath from "node:path";

/** Compose 2.26 prefixes every line with ESC[2K even into a pipe; drop all escapes. */
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[()][A-Za-z0-9]|\r/g;
export const stripAnsi = (s: string) => s.replace(ANSI, "");

export interface LogQuery {
  service?: string;
  tail?: number;
  since?: string;
  grep?: string;
}

export const MAX_TAIL = 10_000;
/** A filtered tail scans at most this much of the file, from the end. */
export const MAX_SCAN_BYTES = 256 * 1024 * 1024;

export interface Tail {
  lines: string[];
  /** True when the scan stopped at MAX_SCAN_BYTES before finding `n` lines. */
  truncated: boolean;
}

/**
 * The last `n` lines of a file (that pass `filter`), read backwards in
 * chunks: never the whole file. Lines are split on raw bytes and decoded
 * whole, so a multi-byte character across a chunk edge stays intact.
 */
export async function tailFile(file: string, n: number, filter?: (line: string) => boolean): Promise<Tail> {
  const fh = await fs.open(file, "r");
  try {
    const { size } = await fh.stat();
    const lines: string[] = [];
    let pos = size;
    let carry: Buffer = Buffer.alloc(0);
    let first = true;
    const take = (raw: Buffer) => {
      const line = raw.toString("utf8");
      if (first) {
        first = false;
        if (line === "") return; // the file's trailing newline
      }
      if (!filter || filter(line)) lines.push(line);
    };
    while (pos > 0 && lines.length < n && size - pos < MAX_SCAN_BYTES) {
      const len = Math.min(64 * 1024, pos);
      pos -= len;
      const chunk = Buffer.alloc(len);
      await fh.read(chunk, 0, len, pos);
      let buf = carry.length ? Buffer.concat([chunk, carry]) : chunk;
      for (let nl = buf.lastIndexOf(0x0a); nl >= 0 && lines.length < n; nl = buf.lastIndexOf(0x0a)) {
        take(buf.subarray(nl + 1));
        buf = buf.subarray(0, nl);
      }
      carry = Buffer.from(buf);
    }
    if (pos === 0 && lines.length < n && (carry.length || !first)) take(carry);
    return { lines: lines.reverse(), truncated: pos > 0 && lines.length < n };
  } finally {
    await fh.close();
  }
}

function lineFilter(q: LogQuery): ((l: string) => boolean) | undefined {
  const checks: Array<(l: string) => boolean> = [];
  if (q.service) {
    const prefix = new RegExp(`^bottle-${escapeRe(q.service)}-[a-z0-9-]+\\s+\\|`);
    checks.push((l) => prefix.test(l));
  }
  if (q.grep) {
    const needle = q.grep;
    checks.push((l) => l.includes(needle));
  }
  if (q.since) {
    const since = Date.parse(q.since);
    if (!Number.isNaN(since)) checks.push((l) => {
      const m = /\|\s+(\d{4}-\d\d-\d\dT[\d:.]+Z)/.exec(l);
      return !m || Date.parse(m[1]!) >= since;
    });
  }
  return checks.length ? (l) => checks.every((c) => c(l)) : undefined;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export interface LogResult {
  source: "live" | "file" | "none";
  lines: string[];
  /** The saved log was larger than we scan for a filtered query; older lines were not searched. */
  truncated?: boolean;
}

export async function readLogs(meta: Metadata, stateDir: string, q: LogQuery): Promise<LogResult> {
  const tail = Math.min(q.tail ?? 200, MAX_TAIL);
  const services = meta.services.map((s) => s.service);
  if (q.service && !services.includes(q.service)) {
    throw new BottleError("bad-input", `bottle "${meta.slug}" has no service "${q.service}"`, `Services: ${services.join(", ")}.`);
  }
  if (meta.state === "running" || meta.state === "starting") {
    const args = ["logs", "--no-color", "--timestamps"];
    if (!q.grep) args.push("--tail", String(tail));
    if (q.since) args.push("--since", q.since);
    if (q.service) args.push(q.service);
    const r = await compose({ project: meta.project, file: meta.composeFile }, args, { timeout: 60_000, reject: false });
    if (r.exitCode === 0) {
      let lines = stripAnsi(r.stdout).split("\n").filter((l) => l !== "");
      if (q.grep) lines = lines.filter((l) => l.includes(q.grep!));
      return { source: "live", lines: lines.slice(-tail) };
    }
  }
  const file = nodePath.join(stateDir, "compose.log");
  try {
    const t = await tailFile(file, tail, lineFilter(q));
    return { source: "file", lines: t.lines, ...(t.truncated ? { truncated: true } : {}) };
  } catch {
    return { source: "none", lines: [] };
  }
}

/** Dump everything compose has to compose.log (escape codes stripped). */
export async function dumpLogs(meta: Metadata, stateDir: string): Promise<void> {
  const r = await compose({ project: meta.project, file: meta.composeFile }, ["logs", "--no-color", "--timestamps"], { timeout: 120_000, reject: false });
  if (r.exitCode === 0 && r.stdout) await fs.writeFile(nodePath.join(stateDir, "compose.log"), stripAnsi(r.stdout) + "\n", { mode: 0o600 });
}

/** Follow a running bottle's logs until it stops or `signal` aborts. */
export async function followLogs(meta: Metadata, q: LogQuery, onLine: (line: string) => void, signal?: AbortSignal): Promise<void> {
  const args = ["compose", "-p", meta.project, "-f", meta.composeFile, "logs", "--no-color", "--timestamps", "--follow", "--tail", String(Math.min(q.tail ?? 50, MAX_TAIL))];
  if (q.since) args.push("--since", q.since);
  if (q.service) args.push(q.service);
  await dockerLines(args, (raw) => {
    const line = stripAnsi(raw);
    if (!q.grep || line.includes(q.grep)) onLine(line);
  }, signal);
}
