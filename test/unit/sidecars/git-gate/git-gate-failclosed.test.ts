// When the secret scanner itself fails, the gate withholds names and text
// rather than printing what it could not check, and keeps going (a throw in
// the server's bookkeeping must not take the gate down).
import { describe, expect, it, vi } from "vitest";

vi.mock("../../../../src/security/secrets.js", () => ({
  findSecrets: () => {
    throw new Error("scanner broke");
  },
}));

const { displayRef, withholdSecrets } = await import("../../../../src/sidecars/git-gate/names.js");
const { unrecordedOutcome } = await import("../../../../src/sidecars/git-gate/outcome.js");

describe("git gate when the scanner fails", () => {
  it("withholds names and messages it could not check", () => {
    expect(displayRef("refs/heads/agent/x", 3)).toBe("(ref #3 of this push: name withheld, it could not be checked for secrets)");
    expect(withholdSecrets("git said something")).toBe("(text withheld: it could not be checked for secrets)");
  });

  it("still records every update", () => {
    const out = unrecordedOutcome({
      push: "p",
      upstream: "app",
      commands: [{ old: "0".repeat(40), new: "a".repeat(40), raw: Buffer.from("refs/heads/agent/x") }],
      recorded: new Set(),
      report: { unpack: "index-pack abnormal exit", refs: [] },
      messages: "error: object 12: hasDotgit: contains '.git'\n",
      upstreamStarted: false,
      exit: { code: 0, signal: null },
      maxPushBytes: 1000,
      bytes: 10,
    });
    expect(out).toMatchObject([{ index: 1, verdict: "refused", rule: "fsck", ref: "(ref #1 of this push: name withheld, it could not be checked for secrets)" }]);
    expect(out[0]!.reason).toContain("(text withheld: it could not be checked for secrets)");
  });
});
