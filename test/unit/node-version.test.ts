import { describe, expect, it } from "vitest";
import { nodeTooOld } from "../../src/node-version.js";

describe("the Node version check", () => {
  it("passes 22 and newer, and tells an older Node what to install", () => {
    expect(nodeTooOld("22.0.0")).toBeUndefined();
    expect(nodeTooOld("v24.1.0")).toBeUndefined();
    expect(nodeTooOld("20.20.2")).toBe(
      "bottle needs Node.js 22 or newer; this is Node.js v20.20.2. Install Node.js 22 or 24 (from nodejs.org, `nvm install 24`, or your package manager), then run `bottle doctor`.",
    );
  });
});
