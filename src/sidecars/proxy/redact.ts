// Keeping an injected credential from coming back to the agent: an upstream
// that echoes request headers (debug endpoints, error pages, httpbin-style
// services) would otherwise hand the agent the very value egress holds for
// it. Response headers and bodies of requests egress injected into are
// masked wherever a credential appears, byte for byte.
import { Transform, type TransformCallback } from "node:stream";

const MASK = 0x2a; // '*'

/** The spellings of a credential worth masking: as sent, and percent-encoded. */
export function credentialNeedles(values: readonly string[]): Buffer[] {
  const out = new Map<string, Buffer>();
  for (const v of values) {
    if (v.length < 4) continue;
    for (const s of [v, encodeURIComponent(v), JSON.stringify(v).slice(1, -1)]) out.set(s, Buffer.from(s, "utf8"));
  }
  // Longest first, so a full header value is masked before a part of it.
  return [...out.values()].sort((a, b) => b.length - a.length);
}

/** Mask every needle in `buf` in place (same length); returns how many were masked. */
export function maskInPlace(buf: Buffer, needles: readonly Buffer[]): number {
  let n = 0;
  for (const needle of needles) {
    for (let i = buf.indexOf(needle); i >= 0; i = buf.indexOf(needle, i + needle.length)) {
      buf.fill(MASK, i, i + needle.length);
      n++;
    }
  }
  return n;
}

/** Whether any needle occurs in `buf`. */
function holdsNeedle(buf: Buffer, needles: readonly Buffer[]): boolean {
  for (const needle of needles) if (buf.includes(needle)) return true;
  return false;
}

/** The needles as latin1 strings (one char per byte), made once per needle list. */
const latin1Forms = new WeakMap<readonly Buffer[], string[]>();
function latin1Needles(needles: readonly Buffer[]): string[] {
  let forms = latin1Forms.get(needles);
  if (!forms) {
    forms = needles.map((n) => n.toString("latin1"));
    latin1Forms.set(needles, forms);
  }
  return forms;
}

/** A char above U+00FF: its latin1 bytes would not be the string's chars, so the string test does not apply. */
const BEYOND_LATIN1 = /[^\x00-\xff]/;

/**
 * Response headers (flat raw list) with every credential masked in their
 * values, byte for byte as they go on the wire (latin1). A value is turned
 * into bytes only when it may hold a needle: node reads header values as
 * latin1 strings, where "the bytes contain the needle" and "the string
 * contains the needle's latin1 form" are the same test. Returns `raw`
 * itself when nothing was masked.
 */
export function redactHeaders(raw: string[], needles: readonly Buffer[]): { headers: string[]; masked: number } {
  const forms = latin1Needles(needles);
  let masked = 0;
  let out: string[] | undefined;
  for (let i = 1; i < raw.length; i += 2) {
    const v = raw[i]!;
    if (!BEYOND_LATIN1.test(v) && !forms.some((f) => v.includes(f))) continue;
    const b = Buffer.from(v, "latin1");
    const n = maskInPlace(b, needles);
    if (!n) continue;
    masked += n;
    out ??= raw.slice();
    out[i] = b.toString("latin1");
  }
  return { headers: out ?? raw, masked };
}

/**
 * Masks a body chunk by chunk, also across chunk boundaries: the last
 * (longest needle − 1) bytes are held back until the next chunk shows
 * whether they start a match. Same length out as in. A chunk is copied
 * only when something in it is masked (the chunk given is never changed);
 * what is sent is otherwise a view of it.
 */
export class BodyMasker {
  #carry: Buffer = Buffer.alloc(0);
  readonly #keep: number;
  masked = 0;

  constructor(private readonly needles: readonly Buffer[]) {
    this.#keep = Math.max(0, ...needles.map((n) => n.length - 1));
  }

  /** The bytes that may be sent now (possibly none). */
  push(chunk: Buffer): Buffer {
    const buf = this.#masked(chunk);
    const cut = Math.max(0, buf.length - this.#keep);
    // A copy: the held-back tail must not depend on who else holds `chunk`.
    this.#carry = Buffer.from(buf.subarray(cut));
    return buf.subarray(0, cut);
  }

  /** What was held back, at the end of the body. */
  flush(): Buffer {
    const rest = this.#carry;
    this.#carry = Buffer.alloc(0);
    return rest;
  }

  /** The last chunk of the body, masked, with what was held back before it: push and flush in one. */
  end(chunk: Buffer): Buffer {
    const buf = this.#masked(chunk);
    this.#carry = Buffer.alloc(0);
    return buf;
  }

  /** The carry and `chunk` together, with every needle masked. */
  #masked(chunk: Buffer): Buffer {
    let buf = this.#carry.length ? Buffer.concat([this.#carry, chunk]) : chunk;
    if (!holdsNeedle(buf, this.needles)) return buf;
    if (buf === chunk) buf = Buffer.from(chunk);
    this.masked += maskInPlace(buf, this.needles);
    return buf;
  }
}

/** BodyMasker as a stream stage, for bodies that are decoded on the way (a pipe of stages). */
export class RedactStream extends Transform {
  readonly #masker: BodyMasker;

  constructor(needles: readonly Buffer[]) {
    super();
    this.#masker = new BodyMasker(needles);
  }

  get masked(): number {
    return this.#masker.masked;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const out = this.#masker.push(chunk);
    done(null, out.length ? out : undefined);
  }

  override _flush(done: TransformCallback): void {
    const rest = this.#masker.flush();
    done(null, rest.length ? rest : undefined);
  }
}
