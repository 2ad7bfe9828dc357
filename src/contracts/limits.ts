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
