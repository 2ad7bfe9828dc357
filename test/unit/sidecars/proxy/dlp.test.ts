import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { findSecrets, percentDecode, SecretScanner } from "../../../../src/security/secrets.js";
import { buildDlpPolicy, describeFinding, scanRequest } from "../../../../src/sidecars/proxy/dlp.js";
import { SAMPLE_RULE, SECRET_SAMPLES } from "../../../helpers/proxy/secret-samples.js";

const samples = Object.entries(SECRET_SAMPLES);

describe("findSecrets", () => {
  it.each(samples)("finds %s plain", (name, secret) => {
    expect(findSecrets(`prefix ${secret} suffix`).map((f) => f.rule)).toContain(SAMPLE_RULE[name]);
  });

  it.each(samples)("finds %s URL-encoded", (name, secret) => {
    // Every byte escaped: nothing of the plain shape is left to match.
    const escaped = [...Buffer.from(`x ${secret} y`)].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("");
    const hits = findSecrets(`q=${escaped}`);
    expect(hits.find((f) => f.rule === SAMPLE_RULE[name])?.encoding).toBe("url-encoded");
  });

  it.each(samples)("finds %s base64-encoded (std and url alphabets)", (name, secret) => {
    for (const enc of ["base64", "base64url"] as const) {
      const hits = findSecrets(`data=${Buffer.from(`user:${secret}`).toString(enc)}&x=1`);
      expect(hits.find((f) => f.rule === SAMPLE_RULE[name])?.encoding).toBe("base64");
    }
  });

  it("sees through double percent-encoding", () => {
    const once = [...Buffer.from(SECRET_SAMPLES["aws-access-key"]!)].map((b) => `%${b.toString(16)}`).join("");
    expect(findSecrets(encodeURIComponent(once)).map((f) => f.rule)).toContain("aws-access-key");
  });

  it("does not flag ordinary text", () => {
    expect(findSecrets("GET /search?q=hello+world&sk=12 HTTP/1.1 Authorization: Basic Zm9vOmJhcg==")).toEqual([]);
    expect(findSecrets("sk-ant is a prefix, ghp_ is too, AKIA alone is nothing")).toEqual([]);
    expect(findSecrets(Buffer.from("just a normal sentence that is long enough").toString("base64"))).toEqual([]);
  });

  it("a finding never carries the secret", () => {
    const secret = SECRET_SAMPLES["github-token"]!;
    expect(JSON.stringify(findSecrets(secret))).not.toContain(secret.slice(4));
  });

  it("percentDecode is lenient with malformed escapes", () => {
    expect(percentDecode("a%2Fb%zz%4")).toBe("a/b%zz%4");
    expect(percentDecode("a+b")).toBe("a b");
  });
});

describe("canaries", () => {
  const value = "s3cr3t-canary-Value/+=9";
  const scanner = new SecretScanner([{ env: "CANARY", value }]);
  const canary = (text: string) => scanner.scanText(text).find((f) => f.rule === "canary:CANARY")?.encoding;
  it("finds the literal, URL-encoded and base64 at any alignment", () => {
    expect(canary(`x${value}y`)).toBe("plain");
    expect(canary(`q=${encodeURIComponent(value)}`)).toBe("url-encoded");
    for (const prefix of ["", "a", "ab", "abc", "user:"]) {
      expect(canary(Buffer.from(`${prefix}${value}tail`).toString("base64")), prefix).toBe("base64");
      expect(canary(Buffer.from(`${prefix}${value}`).toString("base64url")), prefix).toBe("base64");
      // Glued to other base64 characters, so the run's own alignment is not the value's.
      expect(canary(`QUJD${prefix.length ? "x" : ""}${Buffer.from(`${prefix}${value}`).toString("base64")}`), prefix).toBe("base64");
    }
    expect(canary("nothing here")).toBeUndefined();
  });
});

describe("scanRequest", () => {
  const token = `ghp_${"Zz9".repeat(12)}`;
  const { policy, warnings } = buildDlpPolicy(
    { enabled: true, canary_env: ["TOKEN", "SHORT", "UNSET"], canary_exempt: [{ host: "api.example.com", header: "Authorization", env: "TOKEN" }] },
    { TOKEN: token, SHORT: "abc" },
  );

  it("warns about canaries it cannot watch, without their values", () => {
    expect(warnings).toHaveLength(2);
    expect(warnings.join(" ")).not.toContain("abc");
  });

  it("finds secrets in url, headers and body", () => {
    const aws = SECRET_SAMPLES["aws-access-key"]!;
    expect(scanRequest(policy, { host: "h", url: `/a?k=${aws}`, headers: [] })).toMatchObject({ location: "url", rule: "aws-access-key" });
    expect(scanRequest(policy, { host: "h", url: "/", headers: [["X-Key", aws]] })).toMatchObject({ location: 'header "x-key"' });
    expect(scanRequest(policy, { host: "h", url: "/", headers: [], body: Buffer.from(`{"k":"${aws}"}`) })).toMatchObject({ location: "body" });
    expect(scanRequest(policy, { host: "h", url: "/", headers: [], body: gzipSync(`{"k":"${aws}"}`), contentEncoding: "gzip" })).toMatchObject({ location: "body" });
    expect(scanRequest(policy, { host: "h", url: "/ok", headers: [["Accept", "*/*"]], body: Buffer.from("hello") })).toBeUndefined();
  });

  it("flags the canary anywhere but in its exempt header to its exempt host", () => {
    expect(scanRequest(policy, { host: "api.example.com", url: "/", headers: [["Authorization", `Bearer ${token}`]] })).toBeUndefined();
    // Same header, other host: refused (as canary, before the shape rule).
    expect(scanRequest(policy, { host: "evil.example.com", url: "/", headers: [["Authorization", `Bearer ${token}`]] })).toMatchObject({ rule: "canary:TOKEN" });
    // Exempt host, other header or body: refused.
    expect(scanRequest(policy, { host: "api.example.com", url: "/", headers: [["X-Other", token]] })).toMatchObject({ rule: "canary:TOKEN" });
    expect(scanRequest(policy, { host: "api.example.com", url: "/", headers: [], body: Buffer.from(Buffer.from(token).toString("base64")) })).toMatchObject({
      rule: "canary:TOKEN",
      encoding: "base64",
    });
  });

  it("describes a finding without the value", () => {
    const f = scanRequest(policy, { host: "h", url: `/x?t=${encodeURIComponent(token)}`, headers: [] })!;
    expect(describeFinding(f)).toMatch(/url carries the value of TOKEN/);
    expect(describeFinding(f)).not.toContain(token);
  });

  it("does nothing when disabled", () => {
    const off = buildDlpPolicy({ enabled: false, canary_env: [], canary_exempt: [] }, {}).policy;
    expect(scanRequest(off, { host: "h", url: `/${SECRET_SAMPLES.jwt}`, headers: [] })).toBeUndefined();
  });
});
