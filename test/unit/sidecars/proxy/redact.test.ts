// Masking an echoed credential in a response body however the body is cut
// into chunks: the output is the input with every spelling of the
// credential starred out, byte for byte, and nothing else changed.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BodyMasker, credentialNeedles, maskInPlace } from "../../../../src/sidecars/proxy/redact.js";

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
