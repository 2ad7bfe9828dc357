// Header scans are remembered per scanner (agents resend the same headers
// with every request): a remembered result must be exactly the scan's, for
// clean and for secret-bearing headers, and never cross from one policy's
// scanner (its canaries) to another's.
import { describe, expect, it } from "vitest";
import { buildDlpPolicy, scanHostName, scanRequest, type DlpPolicy } from "../../../../src/sidecars/proxy/dlp.js";
import { headerValue, scanConnectHead, scanHostNames } from "../../../../src/sidecars/proxy/host-names.js";

const CANARY = "canary-value-0123456789";
const req = (headers: Array<[string, string]>) => ({ host: "api.test", url: "/x", headers });

describe("remembered header scans", () => {
  it("give the same answer on every request, and stay with their own policy", () => {
    const plain = buildDlpPolicy({ enabled: true, canary_env: [], canary_exempt: [] }, {}).policy;
    const watching = buildDlpPolicy({ enabled: true, canary_env: ["C"], canary_exempt: [] }, { C: CANARY }).policy;
    const headers: Array<[string, string]> = [
      ["user-agent", "agent/1.0"],
      ["x-note", CANARY],
    ];
    for (let i = 0; i < 3; i++) expect(scanRequest(plain, req(headers))).toBeUndefined();
    for (let i = 0; i < 3; i++) expect(scanRequest(watching, req(headers))).toMatchObject({ rule: "canary:C", location: 'header "x-note"' });
    // Split across two headers: found through the joined view, every time.
    const split: Array<[string, string]> = [
      ["x-a", CANARY.slice(0, 11)],
      ["x-b", CANARY.slice(11)],
    ];
    for (let i = 0; i < 3; i++) expect(scanRequest(watching, req(split))?.rule).toBe("canary:C");
    expect(scanRequest(plain, req(split))).toBeUndefined();
  });
});

describe("remembered URL and host-name scans", () => {
  it("give the same answer on every request, and stay with their own policy", () => {
    const plain = buildDlpPolicy({ enabled: true, canary_env: [], canary_exempt: [] }, {}).policy;
    const watching = buildDlpPolicy({ enabled: true, canary_env: ["C"], canary_exempt: [] }, { C: CANARY }).policy;
    const url = `/search?q=${CANARY}`;
    for (let i = 0; i < 3; i++) {
      expect(scanRequest(plain, { host: "api.test", url, headers: [] })).toBeUndefined();
      expect(scanRequest(watching, { host: "api.test", url, headers: [] })).toMatchObject({ rule: "canary:C", location: "url" });
      expect(scanRequest(watching, { host: "api.test", url: "/search?q=nothing", headers: [] })).toBeUndefined();
    }
    // A URL that reads like the key of a joined view is still scanned as a URL.
    const lookalike = JSON.stringify([CANARY.slice(0, 11), CANARY.slice(11)]);
    expect(
      scanRequest(watching, {
        host: "api.test",
        url: "/x",
        headers: [
          ["x-a", CANARY.slice(0, 11)],
          ["x-b", CANARY.slice(11)],
        ],
      })?.rule,
    ).toBe("canary:C");
    expect(scanRequest(watching, { host: "api.test", url: lookalike, headers: [] })).toBeUndefined();

    const host = `${CANARY.toUpperCase()}.exfil.test`;
    for (let i = 0; i < 3; i++) {
      expect(scanHostName(watching, host)).toMatchObject({ rule: "canary:C", location: "host name" });
      expect(scanHostName(plain, host)).toBeUndefined();
      expect(scanHostName(watching, "api.test")).toBeUndefined();
      expect(scanHostName(plain, "ghp_0123456789abcdefABCDEF0123456789abcd.exfil.test")?.rule).toMatch(/github/);
    }
  });
});

describe("remembered CONNECT head verdicts", () => {
  const GHP = `ghp_${"a1B2c3D4e5".repeat(3)}123456`;
  const scanNow = (policy: DlpPolicy, host: string, url: string, raw: string[]) =>
    scanHostNames(policy, [host, headerValue(raw, "host")]) ?? scanRequest(policy, { host, url, headers: raw.flatMap((v, i) => (i % 2 === 0 ? [[v, raw[i + 1]!] as [string, string]] : [])) });

  it("are the scan's own, every time, and stay with their policy", () => {
    const plain = buildDlpPolicy({ enabled: true, canary_env: [], canary_exempt: [] }, {}).policy;
    const watching = buildDlpPolicy({ enabled: true, canary_env: ["C"], canary_exempt: [] }, { C: CANARY }).policy;
    const heads: Array<[string, string, string[]]> = [
      ["api.test", "api.test:443", ["Host", "api.test:443"]],
      ["api.test", "api.test:443", ["Host", "api.test:443", "X-Note", CANARY]],
      ["api.test", "api.test:443", ["Host", "api.test:443", "Proxy-Authorization", `Bearer ${GHP}`]],
      [`${GHP}.exfil.test`, `${GHP}.exfil.test:443`, []],
      ["api.test", "api.test:443", ["Host", `${CANARY}.exfil.test`]],
      ["api.test", "api.test:443", ["X-A", CANARY.slice(0, 11), "X-B", CANARY.slice(11)]],
    ];
    for (let round = 0; round < 3; round++)
      for (const policy of [plain, watching]) for (const [host, url, raw] of heads) expect(scanConnectHead(policy, host, url, raw), `${url} ${raw.join(" ")}`).toEqual(scanNow(policy, host, url, raw));
    expect(scanConnectHead(watching, ...heads[1]!)).toMatchObject({ rule: "canary:C" });
    expect(scanConnectHead(plain, ...heads[1]!)).toBeUndefined();
  });

  it("never let two different heads share an answer through the key", () => {
    const watching = buildDlpPolicy({ enabled: true, canary_env: ["C"], canary_exempt: [] }, { C: CANARY }).policy;
    // Joined naively these two lists would read the same; only one carries the canary in a header of its own.
    const clean = ["X-A", `x\nX-B\n${CANARY.slice(0, 5)}`];
    const secret = ["X-A", "x", "X-B", CANARY];
    expect(scanConnectHead(watching, "api.test", "api.test:443", secret)).toMatchObject({ rule: "canary:C" });
    expect(scanConnectHead(watching, "api.test", "api.test:443", clean)).toEqual(scanNow(watching, "api.test", "api.test:443", clean));
    expect(scanConnectHead(watching, "api.test", "api.test:443", clean)?.rule).not.toBe("canary:C");
  });
});
