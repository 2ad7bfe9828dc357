// bottle_exec keeps a transcript in the state dir; an orchestrator may exec
// without end, so the transcript is rotated and the host disk it takes bounded.
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { describe, expect, it } from "vitest";
import { appendTranscript, EXEC_LOG_MAX_BYTES, execInBottle } from "../../../src/bottles/exec.js";
import { startBottle } from "../../../src/bottles/start.js";
import { layoutOf } from "../../../src/state/layout.js";
import { world } from "../bottles/fixture.js";

describe("the exec transcript", () => {
  it("rotates once over its limit: at most the limit plus one older file", async () => {
    const file = nodePath.join(mkdtempSync(nodePath.join(tmpdir(), "bb-audit-tr-")), "exec.jsonl");
    const line = `${"x".repeat(99)}\n`;
    for (let i = 0; i < 50; i++) await appendTranscript(file, line, 1_000);
    expect(statSync(file).size).toBeLessThanOrEqual(1_000);
    expect(statSync(`${file}.1`).size).toBeLessThanOrEqual(1_000);
    expect(
      readFileSync(file, "utf8")
        .split("\n")
        .filter(Boolean)
        .every((l) => l === line.trim()),
    ).toBe(true);
    expect((statSync(file).mode & 0o777).toString(8)).toBe("600");
  });

  it("every exec is recorded there, with env names but not values", async () => {
    const w = world();
    await startBottle({ ...w.ctx, profile: "web", slug: "web-1" });
    await execInBottle("web-1", ["echo", "hi"], { ...w.ctx, vars: { TOKEN: "value-not-recorded" } });
    const log = readFileSync(layoutOf(w.root, "web-1").execLog, "utf8");
    expect(JSON.parse(log.trim())).toMatchObject({ argv: ["echo", "hi"], envNames: ["TOKEN"] });
    expect(log).not.toContain("value-not-recorded");
    expect(EXEC_LOG_MAX_BYTES).toBe(32 * 1024 * 1024);
  });
});
