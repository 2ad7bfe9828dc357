// Header scans are remembered per scanner (agents resend the same headers
// with every request): a remembered result must be exactly the scan's, for
// clean and for secret-bearing headers, and never cross from one policy's
// scanner (its canaries) to another's.
import { describe, expect, it } from "vitest";
import { buildDlpPolicy, scanHostName, scanRequest } from "../../../../src/sidecars/proxy/dlp.js";

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
