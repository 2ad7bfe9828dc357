// Waiting for a starting bottle's sidecars to serve (plan/readiness.ts says
// how each one tells us). Only while the bottle starts: nothing polls a
// running bottle afterwards. Ready files are stat()ed every few ms (a stat
// is nearly free and a ready sidecar is noticed within that); the engine is
// asked only if the wait drags on (has a sidecar died?), and probe commands
// run one at a time per service.
import { promises as fs } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { BottleError } from "../errors.js";
import type { Engine, ProjectRef } from "../engine/index.js";
import { readyProbes, type Plan, type ReadyProbe } from "../plan/index.js";
import { type BottleLayout, readyFileOf } from "../state/layout.js";
import { z } from "zod";

export const READY_TIMEOUT_MS = 60_000;
const FILE_POLL_MS = 5;
const PROBE_EVERY_MS = 100;
/** When the engine is first asked whether a sidecar died, then how often. */
const STATE_AFTER_MS = 1_000;
const STATE_EVERY_MS = 1_000;

export interface ReadyWait {
  timeoutMs?: number;
  signal?: AbortSignal;
}

export async function waitReady(engine: Engine, plan: Plan, p: ProjectRef, o: ReadyWait = {}): Promise<void> {
  const timeoutMs = o.timeoutMs ?? READY_TIMEOUT_MS;
  const t0 = Date.now();
  const pending = new Map<string, ReadyProbe>(readyProbes(plan).map((r) => [r.service, r]));
  const probing = new Set<string>();
  const lastProbe = new Map<string, number>();
  let nextState = t0 + STATE_AFTER_MS;
  let probeError: unknown;

  while (pending.size) {
    o.signal?.throwIfAborted();
    if (probeError) throw probeError;
    for (const r of pending.values()) {
      if (r.kind === "file") {
        if (await exists(readyFileOf(plan.paths, r.service))) pending.delete(r.service);
        continue;
      }
      if (probing.has(r.service) || Date.now() - (lastProbe.get(r.service) ?? 0) < PROBE_EVERY_MS) continue;
      probing.add(r.service);
      lastProbe.set(r.service, Date.now());
      engine
        .exec(p, { service: r.service, argv: r.argv, timeoutMs: 5_000, ...(o.signal ? { signal: o.signal } : {}) })
        .then((out) => {
          if (out.exitCode === 0) pending.delete(r.service);
        })
        .catch((err: unknown) => {
          // A container not running yet refuses exec; that is "not ready", anything else is real.
          if (!/is not running|No such container|is restarting/i.test(String((err as Error)?.message))) probeError = err;
        })
        .finally(() => probing.delete(r.service));
    }
    if (!pending.size) break;
    const now = Date.now();
    if (now >= nextState) {
      nextState = now + STATE_EVERY_MS;
      const dead = (await engine.ps(p)).filter((c) => pending.has(c.service) && (c.state === "exited" || c.state === "dead"));
      if (dead.length) throw new BottleError("docker", `${dead.map((c) => `${c.name} ${c.state}${c.exitCode !== undefined ? ` (${c.exitCode})` : ""}`).join(", ")} before it was ready`);
    }
    if (now - t0 > timeoutMs) {
      throw new BottleError(
        "docker",
        `not ready after ${Math.round(timeoutMs / 1000)} s: ${[...pending.keys()].join(", ")}`,
        "Read its log (bottle logs <slug> --service <name>): a sidecar that cannot load its config or reach its upstream says why there.",
      );
    }
    await sleep(FILE_POLL_MS);
  }
}

const exists = (file: string) =>
  fs.stat(file).then(
    () => true,
    () => false,
  );

const readyStateSchema = z.object({ pid: z.number(), reloads: z.number().int().nonnegative().optional(), refused: z.number().int().nonnegative().optional() });
export type ReadyState = z.output<typeof readyStateSchema>;

/** What a sidecar last wrote into its ready file, or undefined (none yet, or a bottle started before ready files). */
export async function readReady(layout: BottleLayout, service: string): Promise<ReadyState | undefined> {
  try {
    return readyStateSchema.parse(JSON.parse(await fs.readFile(readyFileOf(layout, service), "utf8")));
  } catch {
    return undefined;
  }
}

/**
 * Wait until a proxy's ready file counts one more reload (applied or
 * refused) than `before`: how the host learns a SIGHUP landed without
 * reading logs. Undefined when the file never moves within the time.
 */
export async function waitReloaded(layout: BottleLayout, service: string, before: ReadyState, timeoutMs = 2_500): Promise<"applied" | "refused" | undefined> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const now = await readReady(layout, service);
    if (now && now.pid === before.pid) {
      if ((now.refused ?? 0) > (before.refused ?? 0)) return "refused";
      if ((now.reloads ?? 0) > (before.reloads ?? 0)) return "applied";
    }
    await sleep(FILE_POLL_MS);
  }
  return undefined;
}
