// Header scans are remembered per scanner (agents resend the same headers
// with every request): a remembered result must be exactly the scan's, for
// clean and for secret-bearing headers, and never cross from one policy's
// scanner (its canaries) to another's.
import { describe, expect, it } from "vitest";
import { buildDlpPolicy, scanRequest } from "../../../../src/sidecars/proxy/dlp.js";

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
