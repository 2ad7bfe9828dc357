import { describe, expect, it } from "vitest";
import { compileAllowlist, isAllowed } from "../../../src/sidecars/proxy/allowlist.js";

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
});
