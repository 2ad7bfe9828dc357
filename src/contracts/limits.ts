// How much one agent may put in its bottle's inbox. The queue is on the
// host's disk and every entry is read by the orchestrator (often a model
// with a bounded context), so it is bounded three ways: pending entries per
// bottle, requests per minute, and characters per reason.
export const QUEUE_LIMITS = {
  /** Pending (undecided) proposals per bottle; the agent is told to wait for decisions. */
  maxPending: 100,
  /** Characters in a reason. */
  maxReasonChars: 2000,
  /** request_access calls: a burst of this many … */
  burst: 20,
  /** … then this many per minute. */
  perMinute: 30,
} as const;

/** Inbox pages: entries per page by default and at most, and a size budget per page. */
export const PAGE_LIMITS = { defaultLimit: 50, maxLimit: 200, maxBytes: 1024 * 1024 } as const;

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
