import { describe, expect, it } from "vitest";
import { compileAllowlist, isAllowed } from "../../../src/security/allowlist.js";

describe("allowlist", () => {
  const list = compileAllowlist(["api.example.com", "*.npmjs.org", "Upper.Test."]);
  it.each([
    ["api.example.com", true],
    ["example.com", false],
    ["evil-api.example.com", false],
    ["x.api.example.com", false],
    ["registry.npmjs.org", true],
    ["a.b.npmjs.org", true],
    ["npmjs.org", false],
    ["evilnpmjs.org", false],
    ["upper.test", true],
  ])("%s → %s", (host, allowed) => {
    expect(isAllowed(list, host)).toBe(allowed);
  });

  it("never lets a wildcard match an IP literal", () => {
    const ips = compileAllowlist(["*.0.0.1", "*.1", "10.0.0.5", "*.ffff:7f00:1"]);
    expect(isAllowed(ips, "127.0.0.1")).toBe(false);
    expect(isAllowed(ips, "10.0.0.1")).toBe(false);
    expect(isAllowed(ips, "::ffff:7f00:1")).toBe(false);
    expect(isAllowed(ips, "10.0.0.5")).toBe(true);
    expect(isAllowed(ips, "a.0.0.1")).toBe(true);
  });
});
