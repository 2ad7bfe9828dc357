import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { describe, expect, it } from "vitest";
import { FILES } from "../../../src/contracts/mounts.js";
import { signalReady } from "../../../src/sidecars/kit/ready.js";

describe("signalReady", () => {
  it("writes one complete ready file (no temp left) naming this process", () => {
    const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-ready-"));
    expect(signalReady({}, dir)).toBe(true);
    expect(readdirSync(dir)).toEqual([FILES.ready]);
    expect(JSON.parse(readFileSync(nodePath.join(dir, FILES.ready), "utf8")).pid).toBe(process.pid);
    // A proxy rewrites it after each reload with its counts.
    expect(signalReady({ reloads: 2, refused: 1 }, dir)).toBe(true);
    expect(JSON.parse(readFileSync(nodePath.join(dir, FILES.ready), "utf8"))).toMatchObject({ pid: process.pid, reloads: 2, refused: 1 });
    expect(readdirSync(dir)).toEqual([FILES.ready]);
  });

  it("does nothing outside a bottle, where the ready dir is not mounted", () => {
    const dir = nodePath.join(tmpdir(), `bb-ready-missing-${process.pid}`);
    expect(signalReady({}, dir)).toBe(false);
    expect(existsSync(dir)).toBe(false);
  });
});
