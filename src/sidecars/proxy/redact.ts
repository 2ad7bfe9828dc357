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

/** Response headers (flat raw list) with every credential masked in their values. */
export function redactHeaders(raw: readonly string[], needles: readonly Buffer[]): { headers: string[]; masked: number } {
  let masked = 0;
  const headers = raw.map((v, i) => {
    if (i % 2 === 0) return v;
    const b = Buffer.from(v, "latin1");
    const n = maskInPlace(b, needles);
    masked += n;
    return n ? b.toString("latin1") : v;
  });
  return { headers, masked };
}

/**
 * Masks a body chunk by chunk, also across chunk boundaries: the last
 * (longest needle − 1) bytes are held back until the next chunk shows
 * whether they start a match. Same length out as in.
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
    const buf = this.#carry.length ? Buffer.concat([this.#carry, chunk]) : Buffer.from(chunk);
    this.masked += maskInPlace(buf, this.needles);
    const cut = Math.max(0, buf.length - this.#keep);
    this.#carry = buf.subarray(cut);
    return buf.subarray(0, cut);
  }

  /** What was held back, at the end of the body. */
  flush(): Buffer {
    const rest = this.#carry;
    this.#carry = Buffer.alloc(0);
    return rest;
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
