import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { describe, expect, it } from "vitest";
import { checkNode, checkStateRoot } from "../../../src/bottles/doctor.js";

describe("doctor checks", () => {
  it("wants Node 22 or newer", () => {
    expect(checkNode("24.1.0").ok).toBe(true);
    const old = checkNode("20.20.2");
    expect(old.ok).toBe(false);
    expect(old.fix).toContain("Node.js 22");
  });

  it("accepts a 0700 state root and a missing one under a writable folder", async () => {
    const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-doctor-"));
    const root = nodePath.join(dir, "state");
    expect((await checkStateRoot(nodePath.join(root, "deeper", "still"))).ok).toBe(true);
    mkdirSync(root, { mode: 0o700 });
    expect(await checkStateRoot(root)).toMatchObject({ ok: true, detail: `${root} (mode 700)` });
  });

  it("flags a state root others can read, with the chmod that fixes it", async () => {
    const root = mkdtempSync(nodePath.join(tmpdir(), "bb-doctor-"));
    chmodSync(root, 0o755);
    expect(await checkStateRoot(root)).toMatchObject({ ok: false, fix: `chmod 700 ${root}` });
  });

  it("flags a state root that is a file", async () => {
    const f = nodePath.join(mkdtempSync(nodePath.join(tmpdir(), "bb-doctor-")), "file");
    writeFileSync(f, "x");
    expect(await checkStateRoot(f)).toMatchObject({ ok: false, detail: `${f} is not a directory` });
  });
});
