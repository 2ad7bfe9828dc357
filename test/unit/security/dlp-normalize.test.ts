// normalizeForDlp normalises mostly-ASCII text a region at a time (the
// runs of characters needing work, each with the character before it); the
// result must be exactly that of normalising the whole text in one go.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { normalizeForDlp, normalizeWhole } from "../../../src/security/dlp/normalize.js";

// Characters each step of the normalisation acts on, and ASCII they may combine with.
const TRICKY = [
  "a",
  "e",
  "=",
  "<",
  ">",
  "A",
  "1",
  " ",
  "\t",
  "\n",
  "\r",
  "\u0000",
  "\u0001",
  "\u007f",
  "\u0301", // combining acute: "e\u0301" is "é", then "e"
  "\u0338", // combining long solidus: "=\u0338" composes to "≠"
  "\u0323",
  "\u200b", // zero-width space
  "\u200d",
  "\u00ad", // soft hyphen
  "\ufe0f", // variation selector
  "\u00a0",
  "\u2014", // em dash (confusable for "-")
  "\u0430", // Cyrillic a
  "\u03bf", // Greek omicron
  "\uff41", // fullwidth a
  "\ufb01", // "fi" ligature
  "\u00e9",
  "\u00bd", // ½ (NFKC: 1⁄2)
  "\u1100", // Hangul choseong: composes with the jungseong after it
  "\u1161",
  "\u11a8",
  "\uac00",
  "\ud835\udc00", // mathematical bold A
  "\udb40\udc41", // tag A
  "\ud83c\udd70", // negative squared A
  "\u3000",
  "\u2028",
];
const ascii = fc.string({ unit: fc.constantFrom(..."abcxyz =-_:/\n\t0123"), minLength: 0, maxLength: 120 });
const texts = fc.array(fc.oneof(fc.constantFrom(...TRICKY), ascii), { maxLength: 40 }).map((parts) => parts.join(""));

describe("normalizeForDlp region by region", () => {
  it("is normalising the whole text in one go", () => {
    fc.assert(
      fc.property(texts, (s) => {
        expect(normalizeForDlp(s), JSON.stringify(s)).toBe(normalizeWhole(s));
      }),
      { numRuns: 3000 },
    );
  });

  it("is normalising the whole text on arbitrary Unicode too", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", minLength: 200, maxLength: 1200 }), fc.string({ unit: "grapheme", minLength: 200, maxLength: 1200 }), (a, b) => {
        expect(normalizeForDlp(a)).toBe(normalizeWhole(a));
        expect(normalizeForDlp(b)).toBe(normalizeWhole(b));
      }),
      { numRuns: 300 },
    );
  });

  it('takes the character before a run with it ("=" and a combining solidus compose to "≠", whose mark then comes off)', () => {
    const s = `${"x".repeat(300)} a=\u0338b e\u0301 \u0430\u0301 ${"y".repeat(300)}`;
    expect(normalizeForDlp(s)).toBe(normalizeWhole(s));
    expect(normalizeForDlp(s)).toContain(" a=b e a ");
  });
});
