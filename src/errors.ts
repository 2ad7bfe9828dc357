// Errors a user (human or model) can act on. `code` lets adapters pick an exit
// code or decide how to phrase the result; `hint` says what to do next.
export type BottleErrorCode = "manifest" | "unknown-profile" | "bad-input" | "unknown-slug" | "docker" | "conflict" | "internal";

export class BottleError extends Error {
  override readonly name = "BottleError";
  constructor(
    readonly code: BottleErrorCode,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }

  /** Message plus hint, as shown to a user or returned to a model. */
  get display(): string {
    return this.hint ? `${this.message}\n${this.hint}` : this.message;
  }
}

export function toBottleError(err: unknown): BottleError {
  if (err instanceof BottleError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new BottleError("internal", message);
}
