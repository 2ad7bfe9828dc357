import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { describe, expect, it } from "vitest";
import { cleanLogText as stripAnsi } from "../../../src/engine/compose.js";
import { tailFile } from "../../../src/state/tail.js";

const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-logs-"));

describe("tailFile", () => {
  it("matches coreutils tail, multi-byte characters across chunk edges included", async () => {
    const file = nodePath.join(dir, "utf8.log");
    // Lines of varying length with 2-, 3- and 4-byte characters, ~2 MB: many 64 KiB edges.
    const lines = Array.from({ length: 40_000 }, (_, i) => `line ${i} ${"é".repeat(i % 7)}${"→".repeat(i % 5)}${"🙂".repeat(i % 3)} end`);
    writeFileSync(file, `${lines.join("\n")}\n`);
    for (const n of [1, 10, 1000, 5000]) {
      const expected = execFileSync("tail", ["-n", String(n), file])
        .toString()
        .replace(/\n$/, "")
        .split("\n");
      expect((await tailFile(file, n)).lines).toEqual(expected);
    }
    expect((await tailFile(file, 100_000)).lines).toEqual(lines);
  });

  it("handles no trailing newline, empty files and filters", async () => {
    const a = nodePath.join(dir, "a.log");
    writeFileSync(a, "x1\ny2\nx3");
    expect((await tailFile(a, 5)).lines).toEqual(["x1", "y2", "x3"]);
    expect((await tailFile(a, 5, (l) => l.startsWith("x"))).lines).toEqual(["x1", "x3"]);
    const e = nodePath.join(dir, "empty.log");
    writeFileSync(e, "");
    expect(await tailFile(e, 5)).toEqual({ lines: [], truncated: false });
  });

  it("strips the escape codes compose puts in logs", () => {
    expect(stripAnsi("\x1b[2Kbottle-agent-x  | hi\x1b[0m\r")).toBe("bottle-agent-x  | hi");
  });
});
