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
}

export async function runLoad(o: { concurrency: number; warmupMs: number; durationMs: number; once: () => Promise<number> }): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let bytes = 0;
  let firstError: string | undefined;
  const warmEnd = Date.now() + o.warmupMs;
  const end = warmEnd + o.durationMs;
  let measuring = false;
  let measureStart = 0;

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
      if (!measuring && Date.now() >= warmEnd) {
        measuring = true;
        measureStart = performance.now();
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  const seconds = (performance.now() - measureStart) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return { requests: latencies.length, errors, rps: latencies.length / seconds, p50: q(0.5), p99: q(0.99), bytesPerSec: bytes / seconds, ...(firstError ? { firstError } : {}) };
}
