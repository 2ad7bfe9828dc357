// The DLP classes of issue 9 (items 3, 4, 7, 10), each with shapes and
// canaries: encodings, normalisation, splits, bodies that must be decoded
// or refused, the scanner's time on adversarial input, advice for model
// keys, and no findings on ordinary content. Cases follow pipelock's
// scanner tests (encoded credential forms, DNS labels, split fields).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { brotliCompressSync, deflateRawSync, gzipSync, zstdCompressSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { findSecrets, SecretScanner } from "../../../../src/security/secrets.js";
import { buildDlpPolicy, describeFinding, MAX_DECODED_BODY, scanHostName, scanRequest, type RequestParts } from "../../../../src/sidecars/proxy/dlp.js";
import { SECRET_SAMPLES } from "../../../helpers/proxy/secret-samples.js";

const ROOT = resolve(import.meta.dirname, "../../../..");
const AWS = SECRET_SAMPLES["aws-access-key"]!;
const GHP = SECRET_SAMPLES["github-token"]!;
const CANARY = "canary-Q7vX2mPz9Lw4";

const hex = (s: string) => Buffer.from(s).toString("hex");
const b32 = (s: string, alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") => {
  let bits = "";
  for (const b of Buffer.from(s)) bits += b.toString(2).padStart(8, "0");
  let out = "";
  for (let i = 0; i < bits.length; i += 5) out += alphabet[parseInt(bits.slice(i, i + 5).padEnd(5, "0"), 2)];
  return out + "=".repeat((8 - (out.length % 8)) % 8);
};
const mixCase = (s: string) => [...s].map((c, i) => (i % 2 ? c.toUpperCase() : c.toLowerCase())).join("");
const b64 = (s: string | Buffer) => Buffer.from(s).toString("base64");

/** The spellings pipelock's encoded-credential test sends, and a few more. */
function encodedForms(secret: string): Record<string, string> {
  const std = b32(secret);
  return {
    plain: secret,
    "hex lower": hex(secret),
    "hex upper": hex(secret).toUpperCase(),
    "hex colon-separated": hex(secret).replace(/(..)(?!$)/g, "$1:"),
    "hex \\x escapes": hex(secret).replace(/(..)/g, "\\x$1"),
    "hex 0x list": hex(secret).replace(/(..)/g, "0x$1,").slice(0, -1),
    "base64 std": b64(secret),
    "base64 url": Buffer.from(secret).toString("base64url"),
    "base64 raw": b64(secret).replace(/=+$/, ""),
    "base64 nested": b64(b64(secret)),
    "base64 wrapped at 76": b64(`${"x".repeat(50)} ${secret} ${"y".repeat(60)}`).replace(/(.{76})/g, "$1\r\n"),
    "base64 glued to other base64 (misaligned)": `QUJDRA${b64(`:${secret}`)}`,
    "base64 followed by binary": b64(Buffer.concat([Buffer.from(secret), Buffer.from([0xff, 0xfe, 0x00, 0x81, 0x9c, 0xa0, 0xb1, 0xc2, 0xd3, 0xe4, 0xf5, 0x86])])),
    "base32 upper": std,
    "base32 lower nopad": std.toLowerCase().replace(/=+$/, ""),
    "base32 mixed": mixCase(std),
    base32hex: b32(secret, "0123456789ABCDEFGHIJKLMNOPQRSTUV"),
    "utf16le hex": Buffer.from(secret, "utf16le").toString("hex"),
    "percent every byte": [...Buffer.from(secret)].map((b) => `%${b.toString(16).padStart(2, "0")}`).join(""),
    "percent three rounds": encodeURIComponent(encodeURIComponent([...Buffer.from(secret)].map((b) => `%${b.toString(16)}`).join(""))),
    "json \\u escapes": [...secret].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`).join(""),
    "html entities": [...secret].map((c) => `&#${c.charCodeAt(0)};`).join(""),
    "html entity then base64": b64(`&#${secret.charCodeAt(0)};${secret.slice(1)}`),
    "quoted-printable soft breaks": `${secret.slice(0, 9)}=\r\n${secret.slice(9, 17)}=\n${secret.slice(17)}`,
    "base64 of hex": b64(hex(secret)),
  };
}

describe("encodings: shapes", () => {
  for (const secret of [AWS, GHP]) {
    for (const [form, value] of Object.entries(encodedForms(secret))) {
      it(`${secret.slice(0, 4)} as ${form}`, () => {
        expect(findSecrets(`q=${value}&next=1`).length, value).toBeGreaterThan(0);
      });
    }
  }

  it("names the chain of decodings", () => {
    expect(findSecrets(`v=${b64(hex(AWS))}`)[0]?.encoding).toBe("base64+hex");
    expect(findSecrets(b64(b64(GHP))).map((f) => f.encoding)).toContain("base64+base64");
  });

  it("leaves pipelock's documented limits alone (rot13, reversed)", () => {
    const rot13 = AWS.replace(/[A-Za-z]/g, (c) => String.fromCharCode(((c.toLowerCase().charCodeAt(0) - 97 + 13) % 26) + (c < "a" ? 65 : 97)));
    expect(findSecrets(rot13)).toEqual([]);
    expect(findSecrets([...AWS].reverse().join(""))).toEqual([]);
  });
});

describe("encodings: canaries exactly as shapes", () => {
  const scanner = new SecretScanner([{ env: "MY_TOKEN", value: CANARY }]);
  for (const [form, value] of Object.entries(encodedForms(CANARY))) {
    it(`canary as ${form}`, () => {
      expect(
        scanner.scanText(`data=${value}&x=1`).map((f) => f.rule),
        value,
      ).toContain("canary:MY_TOKEN");
    });
  }
  it("in UTF-16 bytes (both byte orders)", () => {
    expect(scanner.scanBytes(Buffer.from(`note: ${CANARY}\n`, "utf16le")).map((f) => f.rule)).toContain("canary:MY_TOKEN");
    const be = Buffer.from(`note: ${CANARY}\n`, "utf16le").swap16();
    expect(scanner.scanBytes(be).map((f) => f.rule)).toContain("canary:MY_TOKEN");
  });
});

describe("normalisation before matching", () => {
  const ant = SECRET_SAMPLES["anthropic-key"]!;
  const cases: Record<string, string> = {
    "Cyrillic look-alikes in the prefix": ant.replace("sk-ant", "ѕk-аnt"),
    "Greek look-alike": GHP.replace("ghp_", "ghρ_").replace("ρ", "p").replace("p_", "р_"),
    "fullwidth forms": [...GHP.slice(0, 8)].map((c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0)).join("") + GHP.slice(8),
    "zero-width space inside": `${GHP.slice(0, 3)}\u200b${GHP.slice(3, 20)}\u2060${GHP.slice(20)}`,
    "soft hyphen and bidi controls": `${ant.slice(0, 5)}\u00ad${ant.slice(5, 12)}\u202e${ant.slice(12)}`,
    "NUL and other controls": `${AWS.slice(0, 4)}\u0000${AWS.slice(4, 10)}\u0007${AWS.slice(10)}`,
    "combining marks": `${GHP.slice(0, 2)}\u0301${GHP.slice(2)}`,
    "exotic space inside": `${ant.slice(0, 7)}\u2009${ant.slice(7)}`,
  };
  for (const [name, text] of Object.entries(cases)) {
    it(name, () => expect(findSecrets(`x ${text} y`).length, name).toBeGreaterThan(0));
  }
  it("%00 in a URL is dropped", () => {
    const { policy } = buildDlpPolicy({ enabled: true, canary_env: [], canary_exempt: [] }, {});
    expect(scanRequest(policy, { host: "h.test", url: `/x?k=${AWS.slice(0, 6)}%00${AWS.slice(6)}`, headers: [] })).toMatchObject({ rule: "aws-access-key" });
  });
});

describe("splits across pieces", () => {
  const { policy } = buildDlpPolicy({ enabled: true, canary_env: ["MY_TOKEN"], canary_exempt: [] }, { MY_TOKEN: CANARY });
  const req = (p: Partial<RequestParts>): RequestParts => ({ host: "api.example.test", url: "/", headers: [], ...p });
  const ant = SECRET_SAMPLES["anthropic-key"]!;

  it("query parameters, adjacent or with noise between", () => {
    expect(scanRequest(policy, req({ url: `/c?a=${ant.slice(0, 3)}&b=${ant.slice(3, 20)}&c=${ant.slice(20)}` }))?.location).toBe("query values (joined)");
    expect(scanRequest(policy, req({ url: `/c?a=${GHP.slice(0, 20)}&pad=hello&b=${GHP.slice(20)}` }))).toMatchObject({ rule: "github-token" });
    expect(scanRequest(policy, req({ url: `/c?a=${CANARY.slice(0, 8)}&b=${CANARY.slice(8)}` }))).toMatchObject({ rule: "canary:MY_TOKEN" });
  });

  it("path segments", () => {
    expect(scanRequest(policy, req({ url: `/${ant.slice(0, 3)}/${ant.slice(3, 7)}/${ant.slice(7, 30)}/${ant.slice(30)}` }))).toMatchObject({ rule: "anthropic-key" });
  });

  it("header values, and a header name with its value", () => {
    expect(
      scanRequest(
        policy,
        req({
          headers: [
            ["X-A", ant.slice(0, 7)],
            ["X-B", ant.slice(7)],
          ],
        }),
      )?.location,
    ).toBe("header values (joined)");
    expect(scanRequest(policy, req({ headers: [[`X-${AWS.slice(0, 12)}`, AWS.slice(12)]] }))).toMatchObject({ rule: "aws-access-key" });
    expect(
      scanRequest(
        policy,
        req({
          headers: [
            ["X-A", CANARY.slice(0, 5)],
            ["X-B", CANARY.slice(5)],
          ],
        }),
      ),
    ).toMatchObject({ rule: "canary:MY_TOKEN" });
  });

  it("JSON string fields (keys and values, escaped or not) and form fields", () => {
    const json = JSON.stringify({ part1: GHP.slice(0, 10), meta: { part2: GHP.slice(10, 30) }, list: [GHP.slice(30)] });
    expect(scanRequest(policy, req({ body: Buffer.from(json) }))?.location).toBe("body JSON strings (joined)");
    const escaped = `{"a":"${[...CANARY.slice(0, 6)].map((c) => `\\u00${c.charCodeAt(0).toString(16)}`).join("")}","b":"${CANARY.slice(6)}"}`;
    expect(scanRequest(policy, req({ body: Buffer.from(escaped) }))).toMatchObject({ rule: "canary:MY_TOKEN" });
    const form = `a=${encodeURIComponent(ant.slice(0, 9))}&b=${encodeURIComponent(ant.slice(9))}`;
    expect(scanRequest(policy, req({ body: Buffer.from(form), contentType: "application/x-www-form-urlencoded" }))).toMatchObject({ rule: "anthropic-key" });
  });

  it("host labels, before any DNS lookup", () => {
    expect(scanHostName(policy, `${GHP.slice(0, 20)}.${GHP.slice(20)}.exfil.test`)).toMatchObject({ rule: "github-token", location: "host name (labels joined)" });
    expect(scanHostName(policy, `${[...AWS].join(".")}.exfil.test`)).toMatchObject({ rule: "aws-access-key" });
    expect(scanHostName(policy, `${b32(AWS).replace(/=+$/, "").toLowerCase()}.x.exfil.test`)).toMatchObject({ rule: "aws-access-key", encoding: "base32" });
    expect(scanHostName(policy, `${hex(AWS)}.exfil.test:443`)).toMatchObject({ rule: "aws-access-key", encoding: "hex" });
    expect(scanHostName(policy, `${hex(CANARY).slice(0, 20)}.${hex(CANARY).slice(20)}.exfil.test`)).toMatchObject({ rule: "canary:MY_TOKEN" });
    // Clients lower-case host names on the way: the value is still the value.
    expect(scanHostName(policy, `${CANARY.toLowerCase()}.exfil.test`)).toMatchObject({ rule: "canary:MY_TOKEN" });
  });

  it("ordinary host names are clean", () => {
    for (const h of [
      "api.github.com",
      "registry.npmjs.org",
      "d1a2b3c4d5e6f7.cloudfront.net",
      "s3.us-east-1.amazonaws.com",
      "storage.googleapis.com",
      "xn--bcher-kva.example",
      "api.anthropic.com",
      "a1b2c3d4e5f6a7b8c9d0.execute-api.eu-west-1.amazonaws.com",
      "[::1]",
      "10.0.0.1",
      "my-service-0123456789abcdef.internal.test",
    ]) {
      expect(scanHostName(policy, h), h).toBeUndefined();
    }
  });
});

describe("bodies: decoded in order, or refused (fail closed)", () => {
  const { policy } = buildDlpPolicy({ enabled: true, canary_env: [], canary_exempt: [] }, {});
  const body = Buffer.from(JSON.stringify({ note: "hello", key: GHP }));
  const scan = (b: Buffer, contentEncoding?: string) => scanRequest(policy, { host: "h.test", url: "/", headers: [], body: b, ...(contentEncoding ? { contentEncoding } : {}) });

  it("stacked encodings (gzip, gzip) are undone in order", () => {
    expect(scan(gzipSync(gzipSync(body)), "gzip, gzip")).toMatchObject({ rule: "github-token", encoding: "gzip+gzip" });
    expect(scan(brotliCompressSync(gzipSync(body)), "gzip, br")).toMatchObject({ rule: "github-token" });
    expect(scan(zstdCompressSync(body), "zstd")).toMatchObject({ rule: "github-token" });
    expect(scan(deflateRawSync(body), "deflate")).toMatchObject({ rule: "github-token" });
    expect(scan(body, "identity")).toMatchObject({ rule: "github-token" });
  });

  it("compressed data is recognised by its magic bytes without Content-Encoding", () => {
    expect(scan(gzipSync(body))).toMatchObject({ rule: "github-token", encoding: "gzip" });
    expect(scan(zstdCompressSync(gzipSync(body)))).toMatchObject({ rule: "github-token", encoding: "zstd+gzip" });
  });

  it("a truncated or corrupt stream is refused, naming the encoding", () => {
    const gz = gzipSync(Buffer.concat([body, Buffer.alloc(4096, 0x41)]));
    const cut = scan(gz.subarray(0, gz.length - 20), "gzip");
    expect(cut).toMatchObject({ rule: "dlp-undecodable", location: "body" });
    expect(describeFinding(cut!)).toMatch(/Content-Encoding gzip body is truncated or corrupt/);
    expect(scan(gz.subarray(0, gz.length - 20))).toMatchObject({ rule: "dlp-undecodable" });
    expect(describeFinding(scan(Buffer.from("not gzip at all"), "gzip")!)).toMatch(/gzip/);
  });

  it("an unknown Content-Encoding or an archive it cannot open is refused", () => {
    expect(describeFinding(scan(body, "compress")!)).toMatch(/Content-Encoding "compress" is not one the firewall can decode/);
    expect(describeFinding(scan(Buffer.concat([Buffer.from("BZh91AY&SY"), Buffer.alloc(64)]))!)).toMatch(/bzip2 data \(by its magic bytes\)/);
  });

  it("a body that inflates past the cap is refused without inflating it all", () => {
    const bomb = gzipSync(Buffer.alloc(MAX_DECODED_BODY + 1024 * 1024));
    const before = process.memoryUsage().arrayBuffers;
    const f = scan(bomb, "gzip");
    expect(f).toMatchObject({ rule: "dlp-undecodable" });
    expect(describeFinding(f!)).toMatch(/inflates past/);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(2 * MAX_DECODED_BODY);
  });

  it("ordinary bodies pass", () => {
    expect(scan(gzipSync(Buffer.from(JSON.stringify({ hello: "world", n: [1, 2, 3] }))), "gzip")).toBeUndefined();
    expect(scan(Buffer.from("x^ starts like a zlib header but is text"))).toBeUndefined();
  });
});

describe("one request cannot stall or crash the scanner", () => {
  it('"-eyJ" repeated 100k times scans in well under a second', () => {
    const t0 = performance.now();
    expect(findSecrets("-eyJ".repeat(100_000))).toEqual([]);
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it("a 7 MB base64 run inside JSON does not throw, and a key inside it is found", () => {
    const blob = Buffer.alloc(5.5 * 1024 * 1024, 7);
    Buffer.from(GHP).copy(blob, 4 * 1024 * 1024 + 3);
    const text = JSON.stringify({ file: blob.toString("base64") });
    expect(text.length).toBeGreaterThan(7_000_000);
    expect(findSecrets(text).map((f) => f.rule)).toContain("github-token");
  });

  it("30 MiB of '+' scans in bounded time", () => {
    const t0 = performance.now();
    expect(findSecrets("+".repeat(30 * 1024 * 1024))).toEqual([]);
    expect(performance.now() - t0).toBeLessThan(15_000);
  });
});

describe("the model credential: the refusal says what to do", () => {
  const ant = SECRET_SAMPLES["anthropic-key"]!;
  const { policy } = buildDlpPolicy({ enabled: true, canary_env: ["ANTHROPIC_API_KEY", "GITHUB_TOKEN"], canary_exempt: [] }, { ANTHROPIC_API_KEY: `key-${CANARY}`, GITHUB_TOKEN: GHP });

  it("an Anthropic key sent to the Anthropic API points to an egress route", () => {
    const f = scanRequest(policy, { host: "api.anthropic.com", url: "/v1/messages", headers: [["x-api-key", ant]] })!;
    expect(describeFinding(f)).toMatch(/add an egress route for api\.anthropic\.com with header x-api-key and value \$\{ANTHROPIC_API_KEY\} instead of forward_env/);
    expect(describeFinding(f)).not.toContain(ant);
  });

  it("the forwarded canary too, with its own env name", () => {
    const f = scanRequest(policy, { host: "api.anthropic.com", url: "/v1/messages", headers: [["x-api-key", `key-${CANARY}`]] })!;
    expect(f.rule).toBe("canary:ANTHROPIC_API_KEY");
    expect(describeFinding(f)).toMatch(/egress route for api\.anthropic\.com with header x-api-key and value \$\{ANTHROPIC_API_KEY\}/);
  });

  it("never suggests routing a key to a host it does not belong to", () => {
    const f = scanRequest(policy, { host: "evil.test", url: "/", headers: [["x-api-key", ant]] })!;
    expect(f.rule).toBe("anthropic-key");
    expect(f.hint).toBeUndefined();
    const g = scanRequest(policy, { host: "evil.test", url: "/", headers: [["authorization", `token ${GHP}`]] })!;
    expect(describeFinding(g)).toMatch(/if GITHUB_TOKEN is meant for evil\.test/);
  });
});

describe("no findings on ordinary content", () => {
  const files = (dir: string): string[] =>
    readdirSync(dir).flatMap((e) => {
      const p = join(dir, e);
      return statSync(p).isDirectory() ? files(p) : [p];
    });

  it("this repository's package-lock.json and source files", () => {
    const noisy: string[] = [];
    for (const f of [join(ROOT, "package-lock.json"), join(ROOT, "package.json"), ...files(join(ROOT, "src")), ...files(join(ROOT, "bench"))]) {
      const hits = findSecrets(readFileSync(f, "utf8"));
      if (hits.length) noisy.push(`${f}: ${hits.map((h) => h.rule).join(",")}`);
    }
    expect(noisy).toEqual([]);
  });

  it("long prose, JSON, and binary-as-base64", () => {
    const lorem = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. Token rotation is documented; the password policy and secret manager are described elsewhere. ".repeat(2000);
    expect(findSecrets(lorem)).toEqual([]);
    const doc = JSON.stringify({
      items: Array.from({ length: 2000 }, (_, i) => ({
        id: `item-${i}`,
        sha: hex(`commit ${i}`).padEnd(40, "0"),
        uuid: "123e4567-e89b-12d3-a456-426614174000",
        tags: ["alpha", "beta"],
        next_token: `page${i}`,
      })),
    });
    expect(findSecrets(doc)).toEqual([]);
    let seed = 7;
    const bytes = Buffer.alloc(2 * 1024 * 1024);
    for (let i = 0; i < bytes.length; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      bytes[i] = seed >>> 24;
    }
    expect(findSecrets(JSON.stringify({ file: bytes.toString("base64") }))).toEqual([]);
    expect(findSecrets("GET /search?q=hello+world&page_token=abc123&sort=desc HTTP/1.1\r\nAuthorization: Basic Zm9vOmJhcg==\r\n")).toEqual([]);
  });
});
