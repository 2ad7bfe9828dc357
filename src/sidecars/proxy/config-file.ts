// Loading and hot-reloading a sidecar's config file. The host renders it and
// the sidecar validates it again with the same zod schema, so a hand-edited
// or half-written file is refused rather than half-applied.
import { readFile } from "node:fs/promises";
import type { z } from "zod";

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

export async function loadConfigFile<S extends z.ZodType>(file: string, schema: S): Promise<z.output<S>> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return parseConfigText(text, schema, file);
}

export function parseConfigText<S extends z.ZodType>(text: string, schema: S, file: string): z.output<S> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`);
    throw new ConfigError(`${file} is not a valid config: ${issues.slice(0, 5).join("; ")}`);
  }
  return r.data;
}

/**
 * Holds the state built from the current config. `reload()` builds a new
 * state from the file and swaps it in only if every step succeeded: a broken
 * file leaves the old state serving traffic. Reloads never overlap; a reload
 * requested meanwhile runs once more afterwards so the latest file wins.
 */
export class ReloadableState<T> {
  #current: T;
  #running: Promise<void> | undefined;
  #again = false;
  readonly #swapped: Array<() => void> = [];

  private constructor(
    initial: T,
    private readonly build: () => Promise<T>,
    private readonly onResult: (err?: Error) => void,
  ) {
    this.#current = initial;
  }

  static async create<T>(build: () => Promise<T>, onResult: (err?: Error) => void): Promise<ReloadableState<T>> {
    return new ReloadableState(await build(), build, onResult);
  }

  get current(): T {
    return this.#current;
  }

  /** Runs `fn` after each reload that swapped a new state in (not after a refused one). */
  afterSwap(fn: () => void): void {
    this.#swapped.push(fn);
  }

  reload(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        try {
          this.#current = await this.build();
          for (const fn of this.#swapped) fn();
          this.onResult();
        } catch (err) {
          this.onResult(err instanceof Error ? err : new Error(String(err)));
        }
      } while (this.#again);
      this.#running = undefined;
    })();
    return this.#running;
  }
}
