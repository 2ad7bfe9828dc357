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
    await expect(execInBottle("web-1", ["echo", "a\0b"], w.ctx)).rejects.toMatchObject({ code: "bad-input", message: "argv[1] must not contain NUL bytes" });
    await expect(execInBottle("web-1", ["true"], { ...w.ctx, vars: { X: "\0" } })).rejects.toMatchObject({ code: "bad-input" });
    expect(w.engine.calls.filter((c) => c.op === "exec")).toEqual([]);
  });
});

describe("argv and env the kernel would refuse (E2BIG)", () => {
  const big = (n: number) => "x".repeat(n);
  it("bottle_exec refuses an argument over 128 KiB in bytes (not characters) and too much in all, without running anything", async () => {
    const w = world();
    await startBottle({ ...w.ctx, profile: "web", slug: "web-1" });
    await expect(execInBottle("web-1", ["echo", "é".repeat(70_000)], w.ctx)).rejects.toMatchObject({
      code: "bad-input",
      message: expect.stringMatching(/^argv\[1\] is 140000 bytes; one argument or env entry can be at most 131071/),
    });
    await expect(execInBottle("web-1", ["echo", ...Array.from({ length: 12 }, () => big(100_000))], w.ctx)).rejects.toMatchObject({
      code: "bad-input",
      message: expect.stringMatching(/^argv and env together are \d+ bytes, over 1048576/),
    });
    await expect(execInBottle("web-1", ["true"], { ...w.ctx, vars: { BIG: big(131_072) } })).rejects.toMatchObject({ code: "bad-input", message: expect.stringMatching(/^env BIG is/) });
    expect(w.engine.calls.filter((c) => c.op === "exec")).toEqual([]);
    expect((await execInBottle("web-1", ["echo", big(100_000)], w.ctx)).exitCode).toBe(0);
  });

  it("bottle_run refuses the same before writing a task", async () => {
    const w = world();
    await startBottle({ ...w.ctx, profile: "web", slug: "web-1" });
    await expect(runTask("web-1", ["true", ...Array.from({ length: 12 }, () => big(100_000))], w.ctx)).rejects.toMatchObject({ code: "bad-input" });
    expect((await taskStatus("web-1", w.ctx)).tasks).toEqual([]);
  });

  it("an exec that gave no exit code (the docker CLI could not run) is an error, not exit -1", async () => {
    const w = world();
    await startBottle({ ...w.ctx, profile: "web", slug: "web-1" });
    w.engine.onExec = () => ({ exitCode: -1, stdout: "", stderr: "", timedOut: false });
    await expect(execInBottle("web-1", ["true"], w.ctx)).rejects.toMatchObject({ code: "docker", message: 'docker exec in bottle "web-1" gave no exit code' });
  });
});
