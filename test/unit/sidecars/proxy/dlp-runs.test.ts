// The scanner's fast paths against plain definitions: where the matcher's
// pass says the encoded stretches are (base64 runs, hex runs, base32 words,
// hex byte lists) must be exactly what a character-by-character reading of
// their definitions gives; a window boundary inside a long base64 run keeps
// the run's alignment whichever way the window was read; a text is judged as
// its normalised form even where matching the raw text would differ.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Matcher, type Runs } from "../../../../src/security/dlp/matcher.js";
import { normalizeForDlp } from "../../../../src/security/dlp/normalize.js";
import { SECRET_RULES } from "../../../../src/security/dlp/rules.js";
import { findSecrets, findSecretsInBytes } from "../../../../src/security/secrets.js";
import { buildDlpPolicy, scanRequest } from "../../../../src/sidecars/proxy/dlp.js";
import { SECRET_SAMPLES } from "../../../helpers/proxy/secret-samples.js";

const B64 = /[A-Za-z0-9+/_-]/;
const HEX = /[0-9a-fA-F]/;
const B32_STD = /^[A-Za-z2-7]*$/;
const B32_HEX = /^[0-9A-Va-v]*$/;
const HEX_GAP = /^[:, \-\\xX0]{1,4}$/;

/** Runs as their definitions say, one character at a time (see runs.ts). */
function referenceRuns(s: string, probe: number): Runs {
  const runs: Runs = { b64: [], hex: [], hexLists: [], b32: [], probeFrom: probe };
  const isB64 = (i: number) => i < s.length && B64.test(s[i]!);
  const isHex = (i: number) => i >= 0 && i < s.length && HEX.test(s[i]!);
  // Hex runs: maximal, 24 or longer.
  for (let i = 0; i < s.length; ) {
    if (!isHex(i)) {
      i++;
      continue;
    }
    let j = i;
    while (isHex(j)) j++;
    if (j - i >= 24) runs.hex.push(i, j);
    i = j;
  }
  // Probe: the stretch of base64 characters reaching it.
  if (probe >= 0) while (runs.probeFrom! > 0 && isB64(runs.probeFrom! - 1)) runs.probeFrom!--;
  let list: { start: number; end: number; pairs: number } | undefined;
  const closeList = () => {
    if (list && list.pairs >= 12) runs.hexLists.push(list.start, list.end);
    list = undefined;
  };
  for (let i = 0; i < s.length; ) {
    if (!isB64(i)) {
      i++;
      continue;
    }
    // One run: lines of base64 characters joined by single line breaks.
    const start = i;
    const lines: Array<[number, number]> = [];
    let lineStart = i;
    for (;;) {
      while (isB64(i)) i++;
      const lineBreak = s.startsWith("\r\n", i) ? 2 : s[i] === "\n" || s[i] === "\r" ? 1 : 0;
      const j = i + lineBreak;
      if (lineBreak && isB64(j)) {
        lines.push([lineStart, i]);
        lineStart = i = j;
        continue;
      }
      lines.push([lineStart, i]);
      break;
    }
    const end = i;
    let padded = end;
    while (s[padded] === "=" && padded - end < 6) padded++;
    if (padded - start >= 20) runs.b64.push(start, Math.min(padded, end + 2), lines.length > 1 ? 1 : 0);
    lines.forEach(([a, b], k) => {
      const lineEnd = k === lines.length - 1 ? padded : b;
      let w = a;
      while (w < b) {
        const slash = s.indexOf("/", w);
        const stop = slash >= 0 && slash < b ? slash : lineEnd;
        const word = s.slice(w, stop).replace(/=.*$/, "");
        if (stop - w >= 16 && stop - w <= 65536 && (B32_STD.test(word) || B32_HEX.test(word))) runs.b32.push(w, stop);
        w = stop + 1;
      }
    });
    // A run of 2-4 characters ending in exactly two hex digits is one byte of a list.
    if (end - start >= 2 && end - start <= 4 && isHex(end - 1) && isHex(end - 2) && !(end - 3 >= start && isHex(end - 3))) {
      const pairFrom = end - 2;
      if (list && HEX_GAP.test(s.slice(list.end, pairFrom))) {
        list.pairs++;
        list.end = end;
      } else {
        closeList();
        list = { start: pairFrom, end, pairs: 1 };
      }
    }
  }
  closeList();
  return runs;
}

const matcher = new Matcher(SECRET_RULES);
const quiet = { onMatch: () => false };
const FRAGMENTS = [
  "QUJD",
  "ZGVm",
  "abcdef0123456789",
  "0x6b",
  "0x73, ",
  ":",
  ",",
  " ",
  "\\x",
  "6b",
  "MFRGGZDF",
  "mfrggzdf",
  "0123456789abcdefABCDEF",
  "/",
  "+",
  "-",
  "_",
  "=",
  "==",
  "\n",
  "\r\n",
  "\r",
  "x",
  "wxyz",
  "AKIA",
  "8",
  "é",
  "\t",
];
const texts = fc.array(fc.constantFrom(...FRAGMENTS), { maxLength: 120 }).map((parts) => parts.join(""));

describe("the matcher's stretches match their definitions", () => {
  it("base64 runs, hex runs, base32 words, hex byte lists and the probe", () => {
    fc.assert(
      fc.property(texts, fc.nat(), (s, p) => {
        const probe = s.length ? p % (s.length + 1) : 0;
        const runs: Runs = { b64: [], hex: [], hexLists: [], b32: [], probe };
        matcher.run(s, false, quiet, { runs });
        const want = referenceRuns(s, probe);
        expect({ ...runs, probe: undefined }, JSON.stringify(s)).toEqual({ ...want, probe: undefined });
      }),
      { numRuns: 3000 },
    );
  });

  it("reads the same from the text's bytes as from the text", () => {
    fc.assert(
      fc.property(texts, (s) => {
        const ascii = s.replace(/é/g, "e");
        const fromText: Runs = { b64: [], hex: [], hexLists: [], b32: [] };
        const fromBytes: Runs = { b64: [], hex: [], hexLists: [], b32: [] };
        matcher.run(ascii, false, quiet, { runs: fromText });
        matcher.run(ascii, false, quiet, { runs: fromBytes, bytes: Buffer.from(ascii, "latin1") });
        expect(fromBytes).toEqual(fromText);
      }),
      { numRuns: 500 },
    );
  });

  it("a hex byte list may use two-character separators with a prefix (0x73, 0x6b, …)", () => {
    const aws = SECRET_SAMPLES["aws-access-key"]!;
    const list = [...Buffer.from(aws)].map((b) => `0x${b.toString(16)}`).join(", ");
    expect(findSecrets(`bytes = [${list}]`).map((f) => `${f.rule}/${f.encoding}`)).toContain("aws-access-key/hex");
  });
});

describe("the matcher finds every trigger", () => {
  it("wherever it occurs, in any ASCII case unless case-sensitive, whatever its length", () => {
    const alphabet = ["a", "A", "b", "B", "1", "-", "_", ".", "é", "É", "\n"];
    const str = (min: number, max: number) => fc.array(fc.constantFrom(...alphabet), { minLength: min, maxLength: max }).map((a) => a.join(""));
    const asciiLower = (t: string) => t.replace(/[A-Z]/g, (c) => c.toLowerCase());
    fc.assert(
      fc.property(
        fc.array(fc.record({ triggers: fc.array(str(3, 6), { minLength: 1, maxLength: 3 }), caseSensitive: fc.boolean() }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.oneof(str(1, 20), fc.record({ rule: fc.nat(), trigger: fc.nat(), flips: fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }) })), { maxLength: 12 }),
        (specs, parts) => {
          // Noise, and triggers of the rules with some letters' case flipped.
          const text = parts
            .map((p) => {
              if (typeof p === "string") return p;
              const triggers = specs[p.rule % specs.length]!.triggers;
              return [...triggers[p.trigger % triggers.length]!].map((c, k) => (p.flips[k] ? (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase()) : c)).join("");
            })
            .join("");
          const rules = specs.map((spec, k) => ({ id: `r${k}`, description: "", ...spec, verify: () => -1 }));
          const found: string[] = [];
          new Matcher(rules).run(
            text,
            false,
            {
              onMatch: (r) => {
                found.push(r.id);
                return false;
              },
            },
            { runs: { b64: [], hex: [], hexLists: [], b32: [] } },
          );
          const want = rules.filter((r) => r.triggers.some((t) => (r.caseSensitive ? text.includes(t) : asciiLower(text).includes(asciiLower(t))))).map((r) => r.id);
          expect(found.sort(), JSON.stringify({ specs, text })).toEqual(want.sort());
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe("the matcher after billions of passes", () => {
  it("still reports each rule once per pass (its per-pass stamps do not overflow)", () => {
    const m = new Matcher([{ id: "r", description: "", triggers: ["abc"], verify: () => -1 }]);
    (m as unknown as { gen: number }).gen = 2 ** 31 - 1;
    for (let pass = 0; pass < 3; pass++) {
      const found: string[] = [];
      m.run("abc abc abc", false, {
        onMatch: (r) => {
          found.push(r.id);
          return false;
        },
      });
      expect(found).toEqual(["r"]);
    }
  });
});

describe("windows of a long byte stream", () => {
  const GHP = SECRET_SAMPLES["github-token"]!;
  // A secret nested twice (hex inside base64) is only seen when the run is
  // decoded at its own alignment: the needle rules spot base64 spellings of
  // key prefixes, not of their hex. Place it past the first window (512 KiB +
  // 16 KiB of overlap) so only the second window, which starts inside the
  // run, can see it; the run starts at an offset that is not a multiple of 4.
  const blob = Buffer.alloc(600_000, 7);
  Buffer.from(Buffer.from(`key ${GHP} end`).toString("hex")).copy(blob, 450_001);
  const json = `{"name":"xy.bin","data":"${blob.toString("base64")}"}`;
  expect(json.indexOf("AAAA") % 4).not.toBe(0);

  it("keep a base64 run's alignment when the window is ASCII (the window's own pass finds the run's start)", () => {
    expect(findSecretsInBytes(Buffer.from(json)).map((f) => `${f.rule}/${f.encoding}`)).toContain("github-token/base64+hex");
  });

  it("and when it is not (the bytes are read back)", () => {
    expect(findSecretsInBytes(Buffer.from(`é${json}`)).map((f) => `${f.rule}/${f.encoding}`)).toContain("github-token/base64+hex");
  });

  it("in a request body", () => {
    const { policy } = buildDlpPolicy({ enabled: true, canary_env: [], canary_exempt: [] }, {});
    expect(scanRequest(policy, { host: "upload.test", url: "/", headers: [], body: Buffer.from(json) })).toMatchObject({ rule: "github-token", location: "body", encoding: "base64+hex" });
  });
});

describe("a text is judged as its normalised form", () => {
  const aws = SECRET_SAMPLES["aws-access-key"]!;
  const rules = (t: string) =>
    findSecrets(t)
      .map((f) => `${f.rule}/${f.encoding}`)
      .sort();

  it("a control character that normalising drops joins what is around it, also after a key-shaped prefix", () => {
    // Read raw, the NUL would end a 20-character access key id; normalised,
    // the id runs on into "Z" and is too long to be one.
    const text = `id ${aws}\u0000Z and more`;
    expect(rules(text)).toEqual(rules(normalizeForDlp(text)));
    expect(rules(text)).not.toContain("aws-access-key/plain");
  });

  it("for any mix of key fragments, controls and invisible characters", () => {
    const parts = [aws.slice(0, 4), aws.slice(4, 12), aws.slice(12), "ghp_", "x".repeat(36), "\u0000", "\u0007", "\u200b", "\u00ad", " ", "=", "token", "Z"];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...parts), { maxLength: 40 }), (a) => {
        const text = a.join("");
        expect(rules(text), JSON.stringify(text)).toEqual(rules(normalizeForDlp(text)));
      }),
      { numRuns: 500 },
    );
  });
});
