// The supervise sidecar's rate limit on request_access (QUEUE_LIMITS.burst / perMinute).

/** A token bucket: `capacity` at once, refilled at `perMinute`. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly capacity: number,
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = capacity;
    this.last = now();
  }

  /** Take one token; when there is none, how many seconds until there is. */
  take(): { ok: true } | { ok: false; retryAfterSeconds: number } {
    const t = this.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((t - this.last) / 60_000) * this.perMinute);
    this.last = t;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterSeconds: Math.ceil(((1 - this.tokens) * 60) / this.perMinute) };
  }
}
