// The scanner's fast paths against its slow ones: the matcher's hot loop
// (inside long base64 stretches too) and its filtering of the stretches it hands
// the run tracker (against plain definitions, read from bytes and from the
// text), and a single base64 run decoding to ASCII, whose decoded bytes are
// matched directly (against the same text matched as a string); archive
// magic numbers inside a body, searched for by a rarer part of each.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SecretScanner } from "../../../../src/security/dlp/engine.js";
import { Matcher, type Runs } from "../../../../src/security/dlp/matcher.js";
import { RunTracker } from "../../../../src/security/dlp/runs.js";
import { SECRET_RULES } from "../../../../src/security/dlp/rules.js";
import { buildDlpPolicy, scanRequest } from "../../../../src/sidecars/proxy/dlp.js";
import { SECRET_SAMPLES } from "../../../helpers/proxy/secret-samples.js";

const B64 = /[A-Za-z0-9+/_-]/;
const quiet = { onMatch: () => false };
const newRuns = (probe?: number): Runs => ({ b64: [], hex: [], hexLists: [], b32: [], ...(probe === undefined ? {} : { probe }) });

/** Runs from every maximal stretch of base64 characters, handed to the tracker unfiltered (the pass's own reading, before any fast path). */
function unfilteredRuns(s: string, probe?: number): Runs {
  const runs = newRuns(probe);
  const tracker = new RunTracker();
  tracker.reset(runs);
  const pairs: number[] = [];
  for (let i = 0; i < s.length; ) {
    if (!B64.test(s[i]!)) {
      i++;
      continue;
    }
    let j = i;
    while (j < s.length && B64.test(s[j]!)) j++;
    pairs.push(i, j);
    i = j;
  }
  tracker.add(s, Int32Array.from(pairs), pairs.length);
  tracker.finish();
  return runs;
}

// Long base64 pieces (past the tight loop's threshold), hex, base32, line breaks, separators.
const LONG_B64 = Buffer.from("the quick brown fox jumps over the lazy dog, again and again and again").toString("base64");
const FRAGMENTS = [
  LONG_B64,
  LONG_B64.slice(0, 70),
  "QUJD",
  "0123456789abcdef0123456789abcdef",
  "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U",
  "0x6b",
  "6b",
  ":",
  ", ",
  " ",
  "\n",
  "\r\n",
  "=",
  "==",
  "/",
  ".",
  "\t",
  "\u0001",
  "AKIA",
  "eyJ",
  "wxyz",
];
// Hex byte lists ("6b:73:…", "0x73, 0x6b", "\\x73\\x6b") need a dozen bytes in a row to count.
const BYTES = ["6b:", "6b ", "0x73, ", "\\x2d", "x6b", "6b"];
const texts = fc
  .array(fc.oneof({ arbitrary: fc.constantFrom(...FRAGMENTS), weight: 3 }, { arbitrary: fc.array(fc.constantFrom(...BYTES), { minLength: 8, maxLength: 16 }).map((a) => a.join("")), weight: 1 }), {
    maxLength: 40,
  })
  .map((parts) => parts.join(""));
const matcher = new Matcher(SECRET_RULES);

describe("the matcher's fast paths", () => {
  it("hand the run tracker what every stretch would give it, from the text and from its bytes, with a probe", () => {
    fc.assert(
      fc.property(texts, fc.nat(), fc.boolean(), (s, p, withProbe) => {
        const probe = withProbe ? p % (s.length + 1) : undefined;
        const want = unfilteredRuns(s, probe);
        const fromText = newRuns(probe);
        const fromBytes = newRuns(probe);
        expect(matcher.run(s, false, quiet, { runs: fromText })).toBe(true);
        expect(matcher.run(s, false, quiet, { runs: fromBytes, bytes: Buffer.from(s, "latin1") })).toBe(true);
        expect(fromText, JSON.stringify(s)).toEqual(want);
        expect(fromBytes, JSON.stringify(s)).toEqual(want);
      }),
      { numRuns: 2000 },
    );
  });

  it("give up on a character needing normalisation wherever it is, inside a long base64 stretch too", () => {
    fc.assert(
      fc.property(texts, fc.nat(), (s, p) => {
        const at = p % (s.length + 1);
        const t = `${s.slice(0, at)}\u00a0${s.slice(at)}`;
        expect(matcher.run(t, false, quiet, { printableOnly: true })).toBe(false);
        expect(matcher.run(t, false, quiet, { printableOnly: true, runs: newRuns() })).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it("find every trigger inside and around long base64 stretches, from the text and from its bytes", () => {
    const alphabet = ["a", "A", "b", "B", "1", "+", "/", "-", "_", ".", "=", "\n", " "];
    const noise = (min: number, max: number) => fc.array(fc.constantFrom(...alphabet.slice(0, 9)), { minLength: min, maxLength: max }).map((a) => a.join(""));
    const trigger = fc.array(fc.constantFrom(...alphabet), { minLength: 3, maxLength: 6 }).map((a) => a.join(""));
    fc.assert(
      fc.property(
        fc.array(fc.record({ triggers: fc.array(trigger, { minLength: 1, maxLength: 3 }), caseSensitive: fc.boolean() }), { minLength: 1, maxLength: 6 }),
        // Long noise: stretches of base64 characters as long as a base64 run's.
        fc.array(fc.oneof(noise(0, 8), noise(64, 200), fc.constantFrom(".", "\n", " "), fc.record({ rule: fc.nat(), trigger: fc.nat() })), { maxLength: 12 }),
        (specs, parts) => {
          const text = parts
            .map((p) => {
              if (typeof p === "string") return p;
              const triggers = specs[p.rule % specs.length]!.triggers;
              return triggers[p.trigger % triggers.length]!;
            })
            .join("");
          const rules = specs.map((spec, k) => ({ id: `r${k}`, description: "", ...spec, verify: () => -1 }));
          const lower = (t: string) => t.replace(/[A-Z]/g, (c) => c.toLowerCase());
          const want = rules
            .filter((r) => r.triggers.some((t) => (r.caseSensitive ? text.includes(t) : lower(text).includes(lower(t)))))
            .map((r) => r.id)
            .sort();
          const m = new Matcher(rules);
          for (const bytes of [undefined, Buffer.from(text, "latin1")]) {
            const found: string[] = [];
            const sink = {
              onMatch: (r: { id: string }) => {
                found.push(r.id);
                return false;
              },
            };
            m.run(text, false, sink, { runs: newRuns(), bytes });
            expect(found.sort(), JSON.stringify({ specs, text, bytes: !!bytes })).toEqual(want);
          }
        },
      ),
      { numRuns: 1500 },
    );
  });
});

describe("a single base64 run decoding to ASCII (matched from its decoded bytes)", () => {
  const scanner = new SecretScanner([{ env: "TEST_CANARY", value: "canary-Value-0123456789abcdef" }]);
  const samples = Object.values(SECRET_SAMPLES);
  const prose = [
    "Lorem ipsum dolor sit amet, ",
    "password=",
    "token: ",
    "the quick brown fox ",
    "\n",
    "\r\n",
    "\t",
    "key-",
    "sk-",
    "\u0001",
    "=",
    "%41",
    "&amp;",
    "\\n",
    "canary-Value-0123456789abcdef",
  ];
  const pieces = fc.array(fc.oneof(fc.constantFrom(...prose), fc.constantFrom(...samples)), { minLength: 1, maxLength: 12 }).map((a) => a.join(""));
  const findings = (text: string) =>
    scanner
      .scanText(text)
      .map((f) => `${f.rule}/${f.encoding}`)
      .sort();

  it("finds what the same text decoded from two runs (the general path) finds", () => {
    // The first run decodes to words no rule matches, joined to the second's by a blank line.
    const benign = Buffer.from("nothing but plain words here").toString("base64");
    expect(findings(benign)).toEqual([]);
    fc.assert(
      fc.property(pieces, (text) => {
        const b64 = Buffer.from(text, "latin1").toString("base64");
        expect(findings(b64), JSON.stringify(text)).toEqual(findings(`${benign} ${b64}`));
      }),
      { numRuns: 400 },
    );
  });

  it("finds each sample secret in base64 text, from the text and from its bytes", () => {
    for (const [rule, sample] of Object.entries(SECRET_SAMPLES)) {
      const b64 = Buffer.from(`Some words first. ${sample} and more words after it.`).toString("base64");
      const fromText = scanner.scanText(b64).map((f) => `${f.rule}/${f.encoding}`);
      const fromBytes = scanner.scanBytes(Buffer.from(b64)).map((f) => `${f.rule}/${f.encoding}`);
      expect(fromBytes, rule).toEqual(fromText);
      expect(
        fromText.some((f) => f.endsWith("/base64")),
        rule,
      ).toBe(true);
    }
  });
});

describe("archive magic numbers inside a body (searched for by a rare byte of each)", () => {
  const { policy } = buildDlpPolicy({ enabled: true, canary_env: [], canary_exempt: [] }, {});
  const MAGICS: Array<[string, Buffer]> = [
    ["gzip", Buffer.from([0x1f, 0x8b, 0x08, 0x00])],
    ["zstd", Buffer.from([0x28, 0xb5, 0x2f, 0xfd])],
    ["zip", Buffer.from("PK\x03\x04", "latin1")],
    ["7z", Buffer.from([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c])],
    ["xz", Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])],
    ["bzip2", Buffer.from("BZh91AY&SY", "latin1")],
  ];
  const b64Prefix = Buffer.from("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODk+/PKBZh7z&S");

  it("are found at whatever byte they start, after text or base64 that begins like them", () => {
    for (const [name, magic] of MAGICS)
      for (const at of [1, 2, 7, 8, 9, 50, b64Prefix.length]) {
        const body = Buffer.concat([b64Prefix.subarray(0, at), magic, Buffer.alloc(64, 0x55)]);
        const f = scanRequest(policy, { host: "a.test", url: "/", headers: [], body });
        expect(f?.rule, `${name} at ${at}`).toBe("dlp-undecodable");
        expect(f?.description, `${name} at ${at}`).toContain(`(at byte ${at})`);
      }
  });

  it("a bzip2 magic without its block magic is not one", () => {
    const body = Buffer.concat([Buffer.from("text BZh91AY&SX and BZh9xAY&SY and BZhA1AY&SY "), Buffer.alloc(64, 0x55)]);
    expect(scanRequest(policy, { host: "a.test", url: "/", headers: [], body })).toBeUndefined();
  });
});
