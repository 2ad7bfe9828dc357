// Red-team probes of the pre-DNS host-name scan with internationalised
// names: a key or canary spelled with look-alike letters from other scripts,
// full-width forms or invisible characters reaches the resolver as
// punycode (xn--…), and the scan must see the Unicode it stands for.
import { domainToASCII } from "node:url";
import { describe, expect, it } from "vitest";
import { buildDlpPolicy, scanHostName } from "../../../../src/sidecars/proxy/dlp.js";
import { SECRET_SAMPLES } from "../../../helpers/proxy/secret-samples.js";

const CANARY = `tok-${"7Hq2".repeat(8)}`;
const GHP = SECRET_SAMPLES["github-token"]!;
const { policy } = buildDlpPolicy({ enabled: true, canary_env: ["TOKEN"], canary_exempt: [] }, { TOKEN: CANARY });

/** What a client puts on the wire (and into the DNS query) for a Unicode name. */
const onTheWire = (unicode: string) => domainToASCII(unicode);

describe("host names in punycode are judged as the Unicode they spell", () => {
  const cases: Array<[string, string, string]> = [
    ["a canary with Cyrillic о and ԛ", `${CANARY.replace(/o/g, "\u043e").replace(/q/g, "\u051b")}.wild.test`, "canary:TOKEN"],
    ["a key with Cyrillic а and е", `${GHP.replace(/a/g, "\u0430").replace(/e/g, "\u0435")}.wild.test`, "github-token"],
    ["a canary in full-width forms", `${[...CANARY].map((c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0)).join("")}.wild.test`, "canary:TOKEN"],
    ["a canary with a zero-width space inside", `${CANARY.slice(0, 9)}\u200b${CANARY.slice(9)}.wild.test`, "canary:TOKEN"],
  ];
  it.each(cases)("%s", (_what, unicode, rule) => {
    const wire = onTheWire(unicode);
    expect(wire).not.toBe("");
    expect(scanHostName(policy, wire)?.rule, wire).toBe(rule);
  });

  it("ordinary internationalised names stay clean", () => {
    for (const name of ["bücher.example", "пример.испытание", "例え.テスト", "straße.de"]) {
      const wire = onTheWire(name);
      expect(wire, name).toMatch(/xn--|^[a-z.]+$/);
      expect(scanHostName(policy, wire), name).toBeUndefined();
    }
  });
});
