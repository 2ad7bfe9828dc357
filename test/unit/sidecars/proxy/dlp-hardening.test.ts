// Request DLP hardening after the red-team audit of the proxies: each block
// is one class of hole (numbered as in the audit), reproduced here so it
// fails on the code before the fix.
import { gzipSync } from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { buildDlpPolicy, formFields, looksLikeForm, MAX_BODY_PIECES, type RequestParts, scanRequest } from "../../../../src/sidecars/proxy/dlp.js";

const GHP = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5";
const TOKEN = `tok-${"7Hq2".repeat(8)}`;
const HEX_CANARY = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b";
const { policy } = buildDlpPolicy({ enabled: true, canary_env: ["TOKEN", "HEX_CANARY"], canary_exempt: [] }, { TOKEN, HEX_CANARY });
const scan = (p: Partial<RequestParts>) => scanRequest(policy, { host: "allowed.test", url: "/", headers: [], ...p });
const FORM = "application/x-www-form-urlencoded";

/** Milliseconds `f` takes, best of `runs` (the machine is shared: the best run is the code's own cost). */
function bestMs(f: () => void, runs = 3): number {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    f();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

describe("13: telling a form body by its start takes linear time", () => {
  // The regex it replaces: nested [^\s]* runs, exponential on a near miss (a trailing newline).
  const OLD = /^[\w.%+\-[\]]{1,64}=[^\s]*(?:&[\w.%+\-[\]]{1,64}=[^\s]*)+$/;

  it("answers as the old regex did, on inputs short enough for it", () => {
    const piece = fc.constantFrom("a", "b1", "x.y", "%41", "=", "&", "+", "[", "]", " ", "\n", "-", "é", "&c=", "=d");
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (parts) => {
        const t = parts.join("");
        expect(looksLikeForm(t)).toBe(OLD.test(t));
      }),
      { numRuns: 3000 },
    );
  });

  it("a near-miss form (pairs, then a newline) costs time in proportion to its length", () => {
    const body = (pairs: number) => Buffer.from(`a=b${"&c=d".repeat(pairs)}\n`);
    // 24 pairs took the old regex about a second, 40 most of an hour.
    expect(bestMs(() => scan({ body: body(40) }))).toBeLessThan(50);
    const small = bestMs(() => scan({ body: body(1_000) }), 5);
    const large = bestMs(() => scan({ body: body(16_000) }), 5);
    // 16 times the input; linear within noise (quadratic would be ×256, exponential never ends).
    expect(large).toBeLessThan(Math.max(small, 1) * 16 * 4);
  });

  it("for any near-miss form, the scan stays fast", () => {
    fc.assert(
      fc.property(fc.integer({ min: 10, max: 200 }), fc.constantFrom("\n", " ", "\t", "\r\n"), (pairs, tail) => {
        const t0 = performance.now();
        scan({ body: Buffer.from(`a=b${"&c=d".repeat(pairs)}${tail}`) });
        expect(performance.now() - t0).toBeLessThan(100);
      }),
      { numRuns: 40 },
    );
  });

  it("still reads forms as forms (a key split over two fields is found)", () => {
    expect(scan({ body: Buffer.from(`a=${GHP.slice(0, 10)}&b=${GHP.slice(10)}`) })?.location).toBe("form values (joined)");
  });
});

describe("14: form and JSON bodies are split into bounded windows, and a body with too many pieces is refused", () => {
  it("30 MiB of empty form fields: refused as unscannable, without a piece per field held at once", () => {
    const body = Buffer.from("a=&".repeat(Math.floor((30 * 1024 * 1024) / 3)));
    const before = process.memoryUsage().rss;
    const f = scan({ body, contentType: FORM });
    const grew = (process.memoryUsage().rss - before) / 1048576;
    expect(f).toMatchObject({ rule: "dlp-undecodable", location: "body" });
    expect(f?.description).toContain(`more than ${MAX_BODY_PIECES} form fields`);
    expect(grew).toBeLessThan(256);
  }, 60_000);

  it("JSON: empty strings count as pieces (20 M of them, 60 KiB gzipped, are refused)", () => {
    const json = Buffer.concat([Buffer.from("["), Buffer.from('"",'.repeat(20 * 1024 * 1024)), Buffer.from('""]')]);
    const body = gzipSync(json, { level: 1 });
    const before = process.memoryUsage().rss;
    const f = scan({ body, contentEncoding: "gzip", contentType: "application/json" });
    expect((process.memoryUsage().rss - before) / 1048576).toBeLessThan(256);
    expect(f).toMatchObject({ rule: "dlp-undecodable" });
    expect(f?.description).toContain("JSON strings");
  }, 60_000);

  it("a key split over two form fields after more than a MiB of other fields is found (the old view stopped at a MiB)", () => {
    const filler = Array.from({ length: 40_000 }, (_, i) => `f${i}=${"lorem ipsum ".repeat(3)}`).join("&");
    expect(filler.length).toBeGreaterThan(1024 * 1024);
    const body = Buffer.from(`${filler}&a=${GHP.slice(0, 10)}&b=${GHP.slice(10)}`);
    expect(scan({ body, contentType: FORM })).toMatchObject({ rule: "github-token", location: "form values (joined)" });
  });

  it("a key split over two JSON strings after more than a MiB of other strings is found, also across a window's edge", () => {
    // 17 characters a string: the first window fills at its 61,681st string; 70,000 is past a MiB.
    for (const n of [61_679, 61_680, 61_681, 70_000]) {
      const strings = Array.from({ length: n }, (_, i) => `word number ${String(i).padStart(5, "0")}`);
      const body = Buffer.from(JSON.stringify({ list: strings, a: GHP.slice(0, 10), b: GHP.slice(10) }));
      expect(scan({ body, contentType: "application/json" }), `${n} strings before`).toMatchObject({ rule: "github-token", location: "body JSON strings (joined)" });
    }
  });

  it("formFields splits fields one by one, decodes them, keeps only the ends of long ones, and stops when told", () => {
    const seen: Array<[string, string | undefined]> = [];
    const n = formFields(Buffer.from("a=1&&b=%41;c&d="), (k, v) => {
      seen.push([k, v]);
      return true;
    });
    expect(n).toBe(4);
    expect(seen).toEqual([
      ["a", "1"],
      ["b", "A"],
      ["c", undefined],
      ["d", ""],
    ]);
    const long = formFields(Buffer.from(`x=${"y".repeat(10_000)}`), (_k, v) => {
      seen.push(["x", v]);
      return false;
    });
    expect(long).toBe(1);
    expect(seen.at(-1)![1]!.length).toBeLessThan(1100);
    expect(formFields(Buffer.from("a=1&b=2&c=3"), () => false)).toBe(1);
  });
});
