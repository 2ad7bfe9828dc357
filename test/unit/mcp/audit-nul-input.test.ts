// A NUL byte cannot cross into a process's argv or environment. Refused up
// front as bad input, before a task record or dir is written (a refusal
// changes nothing), not discovered by the spawn afterwards.
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { execInBottle } from "../../../src/bottles/exec.js";
import { startBottle } from "../../../src/bottles/start.js";
import { runTask, taskStatus } from "../../../src/bottles/tasks.js";
import { layoutOf } from "../../../src/state/layout.js";
import { world } from "../bottles/fixture.js";

describe("NUL bytes in a command's argv or env", () => {
  it("bottle_run refuses an env value with NUL and writes no task", async () => {
    const w = world();
    await startBottle({ ...w.ctx, profile: "web", slug: "web-1" });
    const before = readdirSync(layoutOf(w.root, "web-1").stateDir, { recursive: true }).sort();
    await expect(runTask("web-1", ["true"], { ...w.ctx, vars: { OK: "a\0b" } })).rejects.toMatchObject({ code: "bad-input", message: "env OK must not contain NUL bytes" });
    expect((await taskStatus("web-1", w.ctx)).tasks).toEqual([]);
    expect(readdirSync(layoutOf(w.root, "web-1").stateDir, { recursive: true }).sort()).toEqual(before);
    expect(w.engine.calls.filter((c) => c.op === "execDetached")).toEqual([]);
  });

  it("bottle_exec refuses NUL in argv or an env value without running anything", async () => {
    const w = world();
    await startBottle({ ...w.ctx, profile: "web", slug: "web-1" });
    await expect(execInBottle("web-1", ["echo", "a\0b"], w.ctx)).rejects.toMatchObject({ code: "bad-input", message: "argv must not contain NUL bytes" });
    await expect(execInBottle("web-1", ["true"], { ...w.ctx, vars: { X: "\0" } })).rejects.toMatchObject({ code: "bad-input" });
    expect(w.engine.calls.filter((c) => c.op === "exec")).toEqual([]);
  });
});
