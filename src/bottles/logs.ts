// Logs: live from the engine while running, from compose.log after stop.
import { promises as fs } from "node:fs";
import { z } from "zod";
import type { Engine, ProjectRef } from "../engine/index.js";
import { BottleError } from "../errors.js";
import type { BottleLayout } from "../state/layout.js";
import type { Metadata } from "../state/metadata.js";
import { tailFile } from "../state/tail.js";
import { contextOf, type CtxInput } from "./context.js";
import { openBottle } from "./handle.js";

export interface LogQuery {
  service?: string;
  tail?: number;
  since?: string;
  grep?: string;
}

export const MAX_TAIL = 10_000;

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
    if (!Number.isNaN(since))
      checks.push((l) => {
        const m = /\|\s+(\d{4}-\d\d-\d\dT[\d:.]+Z)/.exec(l);
        return !m || Date.parse(m[1]!) >= since;
      });
  }
  return checks.length ? (l) => checks.every((c) => c(l)) : undefined;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** What bottle_logs returns as structuredContent and `bottle logs --json` prints. */
export const logsOutputSchema = z.object({
  source: z.enum(["live", "file", "none"]),
  lines: z.array(z.string()),
  /** The saved log was larger than we scan for a filtered query; older lines were not searched. */
  truncated: z.boolean().optional(),
});
export type LogResult = z.output<typeof logsOutputSchema>;

export interface LogsRequest extends CtxInput, LogQuery {
  slug: string;
}

/** The adapters' entry: a bottle's logs by slug. */
export async function bottleLogs(r: LogsRequest): Promise<LogResult> {
  const ctx = contextOf(r);
  const b = await openBottle(ctx, r.slug);
  const { slug: _slug, env: _env, engine: _engine, ...q } = r;
  return readLogs(ctx.engine, b.meta, b.layout, q);
}

export async function readLogs(engine: Engine, meta: Metadata, layout: BottleLayout, q: LogQuery): Promise<LogResult> {
  const tail = Math.min(q.tail ?? 200, MAX_TAIL);
  const services = meta.services.map((s) => s.service);
  if (q.service && !services.includes(q.service)) {
    throw new BottleError("bad-input", `bottle "${meta.slug}" has no service "${q.service}"`, `Services: ${services.join(", ")}.`);
  }
  if (meta.state === "running" || meta.state === "starting") {
    const live = await engine.logs(
      { slug: meta.slug, project: meta.project, file: meta.composeFile },
      { timestamps: true, ...(q.grep ? {} : { tail }), ...(q.since ? { since: q.since } : {}), ...(q.service ? { service: q.service } : {}) },
    );
    if (live) {
      const lines = q.grep ? live.filter((l) => l.includes(q.grep!)) : live;
      return { source: "live", lines: lines.slice(-tail) };
    }
  }
  try {
    const t = await tailFile(layout.composeLog, tail, lineFilter(q));
    return { source: "file", lines: t.lines, ...(t.truncated ? { truncated: true } : {}) };
  } catch {
    return { source: "none", lines: [] };
  }
}

/** Save everything the engine has to compose.log (escape codes stripped). */
export async function dumpLogs(engine: Engine, p: ProjectRef, layout: BottleLayout): Promise<void> {
  const lines = await engine.logs(p, { timestamps: true });
  if (lines?.length) await fs.writeFile(layout.composeLog, `${lines.join("\n")}\n`, { mode: 0o600 });
}

/** Follow a running bottle's logs until it stops or `signal` aborts; a bottle that is not running returns its saved log instead. */
export async function followBottleLogs(r: LogsRequest, onLine: (line: string) => void, signal?: AbortSignal): Promise<LogResult | undefined> {
  const ctx = contextOf(r);
  const b = await openBottle(ctx, r.slug);
  if (b.meta.state !== "running") {
    const { slug: _slug, env: _env, engine: _engine, ...q } = r;
    return readLogs(ctx.engine, b.meta, b.layout, q);
  }
  await ctx.engine.followLogs(
    b.project,
    { tail: Math.min(r.tail ?? 50, MAX_TAIL), ...(r.since ? { since: r.since } : {}), ...(r.service ? { service: r.service } : {}) },
    (line) => {
      if (!r.grep || line.includes(r.grep)) onLine(line);
    },
    signal,
  );
  return undefined;
}
