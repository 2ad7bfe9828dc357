// Masking an echoed credential in a response body however the body is cut
// into chunks: the output is the input with every spelling of the
// credential starred out, byte for byte, and nothing else changed.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BodyMasker, type CredentialNeedles, credentialNeedles, maskInPlace, redactHeaders } from "../../../../src/sidecars/proxy/redact.js";

const TOKEN = "tok-7Hq27Hq27Hq2";
const needles = credentialNeedles([`Bearer ${TOKEN}`, TOKEN]);

describe("BodyMasker", () => {
  it("masks a credential split across chunks at any point", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), fc.string({ maxLength: 60 }), fc.array(fc.nat(200), { maxLength: 6 }), (before, after, cuts) => {
        const body = Buffer.from(`${before}Bearer ${TOKEN}${after} and ${encodeURIComponent(TOKEN)} again ${TOKEN}`);
        const expected = Buffer.from(body);
        maskInPlace(expected, needles);
        const points = [...new Set(cuts.map((c) => c % (body.length + 1)))].sort((a, b) => a - b);
        const m = new BodyMasker(needles);
        const out: Buffer[] = [];
        let from = 0;
        for (const p of [...points, body.length]) {
          out.push(m.push(body.subarray(from, p)));
          from = p;
        }
        out.push(m.flush());
        const got = Buffer.concat(out);
        expect(got.equals(expected)).toBe(true);
        expect(got.includes(TOKEN)).toBe(false);
        expect(got.length).toBe(body.length);
      }),
      { numRuns: 500 },
    );
  });
});

describe("BodyMasker and text that starts like a zlib header", () => {
  // 1 in 31 pairs of characters passes zlib's header check ("x^", "hC", "HA"), and a
  // few bytes after it may still inflate: such text was held as zlib, failed to
  // decode and the response was refused (seen as a flaky property test).
  it.each(["x^", "hC ", 'x^Q!c"7', "HA"])("passes %j-prefixed text on, masked, however it is cut", (prefix) => {
    const body = Buffer.from(`${prefix}Bearer ${TOKEN} and ${encodeURIComponent(TOKEN)} again ${TOKEN}`);
    const expected = Buffer.from(body);
    maskInPlace(expected, needles);
    for (const cut of [2, 4, 10, body.length]) {
      const m = new BodyMasker(needles);
      const got = Buffer.concat([m.push(body.subarray(0, cut)), m.push(body.subarray(cut)), m.flush()]);
      expect(m.refusal, `cut at ${cut}`).toBeUndefined();
      expect(got.toString("latin1"), `cut at ${cut}`).toBe(expected.toString("latin1"));
    }
  });
});

describe("BodyMasker.end (the last chunk, sent with the end of the response)", () => {
  it("gives the same bytes as push + flush, however the body is cut, and never changes the chunks it is given", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), fc.string({ maxLength: 60 }), fc.array(fc.nat(200), { maxLength: 6 }), (before, after, cuts) => {
        const body = Buffer.from(`${before}Bearer ${TOKEN}${after} and ${JSON.stringify(TOKEN).slice(1, -1)} ${TOKEN}`);
        const expected = Buffer.from(body);
        maskInPlace(expected, needles);
        const points = [...new Set(cuts.map((c) => c % (body.length + 1)))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let from = 0;
        for (const p of [...points, body.length]) {
          chunks.push(Buffer.from(body.subarray(from, p)));
          from = p;
        }
        const copies = chunks.map((c) => Buffer.from(c));
        const m = new BodyMasker(needles);
        const out = chunks.slice(0, -1).map((c) => m.push(c));
        out.push(m.end(chunks.at(-1)!));
        const got = Buffer.concat(out);
        expect(got.equals(expected)).toBe(true);
        expect(m.masked).toBe(maskInPlace(Buffer.from(body), needles));
        expect(chunks.every((c, i) => c.equals(copies[i]!))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it("hands a chunk with nothing to mask on as it is (no copy)", () => {
    const chunk = Buffer.from("nothing secret here, just a longer body than any needle is long");
    const m = new BodyMasker(needles);
    const out = m.end(chunk);
    expect(out.buffer).toBe(chunk.buffer);
    expect(out.equals(chunk)).toBe(true);
  });
});

/** What redactHeaders does without its string fast path: every name and value through a buffer. */
function redactHeadersByBytes(raw: readonly string[], ns: CredentialNeedles): { headers: string[]; masked: number } {
  let masked = 0;
  const headers = raw.map((v) => {
    const b = Buffer.from(v, "latin1");
    const n = maskInPlace(b, ns);
    masked += n;
    return n ? b.toString("latin1") : v;
  });
  return { headers, masked };
}

describe("redactHeaders", () => {
  const utf8Token = "tök-Ωmega-7Hq27Hq2";
  const utf8Needles = credentialNeedles([TOKEN, utf8Token]);
  // Header values as node gives them: one char per byte (latin1), plus chars past U+00FF that only JS code could put there.
  const asLatin1 = (s: string) => Buffer.from(s, "utf8").toString("latin1");
  const piece = fc.oneof(
    fc.string({ maxLength: 12 }),
    fc.constantFrom(TOKEN, `Bearer ${TOKEN}`, encodeURIComponent(TOKEN), asLatin1(utf8Token), asLatin1(encodeURIComponent(utf8Token)), TOKEN.slice(0, 7), "\u0100", "Ā"),
  );
  const value = fc.array(piece, { maxLength: 5 }).map((p) => p.join(""));

  it("masks exactly what the byte-for-byte masking does, in every header name and value", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom("X-Echo", "Set-Cookie", "Location", "Content-Type"), value), { maxLength: 6 }), (pairs) => {
        const raw = pairs.flat();
        for (const ns of [needles, utf8Needles]) {
          const before = [...raw];
          const got = redactHeaders(raw, ns);
          expect(got).toEqual(redactHeadersByBytes(before, ns));
          expect(raw).toEqual(before);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it("masks a credential in any header, not only the first or the one it was sent in", () => {
    const raw = ["Content-Type", "text/plain", "X-A", "ok", "Location", `https://x.test/?t=${encodeURIComponent(TOKEN)}`, "X-Debug", `auth=Bearer ${TOKEN}`];
    const { headers, masked } = redactHeaders(raw, needles);
    expect(masked).toBe(2);
    expect(headers.join("\n")).not.toContain(TOKEN);
    expect(headers.join("\n")).not.toContain(encodeURIComponent(TOKEN));
    expect(headers.slice(0, 4)).toEqual(raw.slice(0, 4));
  });
});
