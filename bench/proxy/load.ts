// Closed-loop load: `concurrency` workers each run `once` back to back for a
// fixed time after a warm-up. Bounded by time, so the bench always ends.

export interface LoadResult {
  requests: number;
  errors: number;
  rps: number;
  p50: number;
  p99: number;
  /** Response bytes per second (when `once` reports bytes). */
  bytesPerSec: number;
  firstError?: string;
  /** Measured wall time, seconds. */
  seconds: number;
  bytes: number;
  /** Sorted request latencies, ms (to merge rounds). */
  latencies: number[];
  /** Change of `probe()` over the measured window (e.g. a proxy's CPU ms). */
  probed?: number;
}

export async function runLoad(o: { concurrency: number; warmupMs: number; durationMs: number; once: () => Promise<number>; probe?: () => number }): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let bytes = 0;
  let firstError: string | undefined;
  const warmEnd = Date.now() + o.warmupMs;
  const end = warmEnd + o.durationMs;
  let measuring = false;
  let measureStart = 0;
  let probeStart = 0;
  const startMeasuring = () => {
    measuring = true;
    measureStart = performance.now();
    if (o.probe) probeStart = o.probe();
  };
  if (o.warmupMs <= 0) startMeasuring();

  const worker = async () => {
    while (Date.now() < end) {
      const t0 = performance.now();
      try {
        const n = await o.once();
        if (measuring) {
          latencies.push(performance.now() - t0);
          bytes += n;
        }
      } catch (err) {
        if (measuring) errors++;
        firstError ??= err instanceof Error ? err.message : String(err);
        await new Promise((r) => setTimeout(r, 20));
      }
      if (!measuring && Date.now() >= warmEnd) startMeasuring();
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  const seconds = (performance.now() - measureStart) / 1000;
  const probed = o.probe ? o.probe() - probeStart : undefined;
  latencies.sort((a, b) => a - b);
  return summarise({ latencies, errors, bytes, seconds, ...(firstError ? { firstError } : {}), ...(probed !== undefined ? { probed } : {}) });
}

function summarise(r: { latencies: number[]; errors: number; bytes: number; seconds: number; firstError?: string; probed?: number }): LoadResult {
  const q = (p: number) => r.latencies[Math.min(r.latencies.length - 1, Math.floor(p * r.latencies.length))] ?? NaN;
  return { ...r, requests: r.latencies.length, rps: r.latencies.length / r.seconds, p50: q(0.5), p99: q(0.99), bytesPerSec: r.bytes / r.seconds };
}

/** Several measured windows of the same engine as one result (rates over the summed time). */
export function mergeLoads(parts: readonly LoadResult[]): LoadResult {
  const latencies = parts.flatMap((p) => p.latencies).sort((a, b) => a - b);
  const firstError = parts.find((p) => p.firstError)?.firstError;
  const probedParts = parts.filter((p) => p.probed !== undefined);
  return summarise({
    latencies,
    errors: parts.reduce((n, p) => n + p.errors, 0),
    bytes: parts.reduce((n, p) => n + p.bytes, 0),
    seconds: parts.reduce((n, p) => n + p.seconds, 0),
    ...(firstError ? { firstError } : {}),
    ...(probedParts.length ? { probed: probedParts.reduce((n, p) => n + p.probed!, 0) } : {}),
  });
}
