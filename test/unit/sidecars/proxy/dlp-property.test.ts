// Property tests of the DLP scanner: any input, random or built from the
// fragments that stress a backtracking engine, never throws and scans in
// time proportional to its size (issue 9 item 4).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { findSecrets, findSecretsInBytes } from "../../../../src/security/secrets.js";
import { buildDlpPolicy, scanHostName, scanRequest } from "../../../../src/sidecars/proxy/dlp.js";

const FRAGMENTS = [
  "-eyJ",
  "eyJ",
  ".",
  "sk-ant-",
  "ghp_",
  "AKIA",
  "%41",
  "%",
  "\\u00",
  "\\",
  "&#",
  "&#x4",
  "=\r\n",
  "=3D",
  "0x",
  ":",
  "ab",
  "+/",
  "==",
  "password=",
  "_TOKEN=",
  "-----BEGIN ",
  "xoxb-",
  "Q~",
  ":AA",
  "MTIz",
  "\n",
  " ",
  "é",
  "\u200b",
  "ｇ",
];
const adversarial = fc.array(fc.constantFrom(...FRAGMENTS), { minLength: 1, maxLength: 400 }).map((a) => a.join(""));
const { policy } = buildDlpPolicy({ enabled: true, canary_env: ["T"], canary_exempt: [] }, { T: "canary-value-0123" });

describe("DLP scanner properties", () => {
  it("never throws on random or adversarial text, bytes, requests and host names", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 2000 }), fc.string({ unit: "binary", maxLength: 500 }), adversarial), fc.uint8Array({ maxLength: 2000 }), (text, bytes) => {
        findSecrets(text);
        findSecretsInBytes(Buffer.from(bytes));
        scanRequest(policy, { host: "h.test", url: `/${text}`, headers: [["x", text]], body: Buffer.from(text) });
        scanRequest(policy, { host: "h.test", url: "/", headers: [], body: Buffer.from(bytes), contentEncoding: "gzip" });
        scanHostName(policy, text);
      }),
      { numRuns: 300 },
    );
  });

  it("scan time grows linearly with the input", () => {
    const time = (s: string) => {
      const runs: number[] = [];
      for (let k = 0; k < 3; k++) {
        const t0 = performance.now();
        findSecrets(s);
        runs.push(performance.now() - t0);
      }
      return Math.min(...runs);
    };
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...FRAGMENTS), { minLength: 1, maxLength: 6 }), (parts) => {
        const unit = parts.join("");
        const small = unit.repeat(Math.ceil(64_000 / unit.length));
        const large = unit.repeat(Math.ceil(256_000 / unit.length));
        const ts = time(small);
        const tl = time(large);
        // 4× the input: generous bound for a loaded 2-core machine, far below quadratic (16×).
        expect(tl, JSON.stringify(parts)).toBeLessThan(Math.max(10 * ts, 60));
      }),
      { numRuns: 25 },
    );
  });
});
