// settleHeap: once a sidecar serves, one memory-reducing collection gives
// back what start-up grew (run in a child process: it changes V8 state).
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { describe, expect, it } from "vitest";

const SETTLE = nodePath.resolve(import.meta.dirname, "../../../src/sidecars/kit/settle.ts");

const CHILD = `
import { getHeapSpaceStatistics } from "node:v8";
import { runInNewContext } from "node:vm";
import { settleHeap } from ${JSON.stringify(SETTLE)};
const young = () => getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_size;
// Start-up-like churn: many short-lived objects, some kept a while, grow the young generation.
let keep = [];
for (let i = 0; i < 400_000; i++) {
  keep.push({ i, s: "x" + i });
  if (keep.length > 50_000) keep = [];
}
keep = null;
const before = { young: young(), heap: process.memoryUsage().heapTotal };
const timer = settleHeap(0);
await new Promise((r) => setTimeout(r, 50));
const after = { young: young(), heap: process.memoryUsage().heapTotal };
console.log(JSON.stringify({ before, after, gcGlobal: typeof globalThis.gc, gcInNewContext: runInNewContext("typeof gc"), unref: !timer.hasRef() }));
`;

describe("settleHeap", () => {
  it("shrinks the young generation and the heap after start-up churn, and leaves gc() unexposed", () => {
    const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-settle-"));
    const file = nodePath.join(dir, "child.mts");
    writeFileSync(file, CHILD);
    const out = JSON.parse(execFileSync(process.execPath, ["--import", "tsx", file], { encoding: "utf8", timeout: 60_000 }));
    expect(out.before.young).toBeGreaterThan(2 * 1024 * 1024);
    expect(out.after.young).toBeLessThan(out.before.young / 2);
    expect(out.after.heap).toBeLessThan(out.before.heap);
    expect(out.gcGlobal).toBe("undefined");
    expect(out.gcInNewContext).toBe("undefined");
    expect(out.unref).toBe(true);
  });
});
