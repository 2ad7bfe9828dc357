// A `docker exec` client that is killed (timeout, cancelled request, server
// gone) leaves its command running in the container. bottle_exec marks the
// command's environment with a fresh id and, when it stopped waiting, kills
// every process that carries it.
import { describe, expect, it } from "vitest";
import { EXEC_ENV, execInBottle, KILL_BY_ENV } from "../../../src/bottles/exec.js";
import { startBottle } from "../../../src/bottles/start.js";
import type { ExecRequest } from "../../../src/engine/index.js";
import { world } from "../bottles/fixture.js";

async function running() {
  const w = world();
  await startBottle({ ...w.ctx, profile: "web", slug: "web-1" });
  const execs: ExecRequest[] = [];
  return { w, execs };
}

const kills = (execs: ExecRequest[]) => execs.filter((r) => r.argv[2] === KILL_BY_ENV);

describe("bottle_exec leaves nothing running when it stops waiting", () => {
  it("a command that finishes is not followed by a kill", async () => {
    const { w, execs } = await running();
    w.engine.onExec = (_p, r) => {
      execs.push(r);
      return { exitCode: 0, stdout: "", stderr: "", timedOut: false };
    };
    await execInBottle("web-1", ["true"], { ...w.ctx, vars: { FOO: "bar" } });
    expect(execs).toHaveLength(1);
    expect(execs[0]!.env).toMatchObject({ FOO: "bar", [EXEC_ENV]: expect.stringMatching(/^x[a-z0-9]+-[a-f0-9]{6}$/) });
  });

  it("a timed-out command is killed by the id in its environment, and the result still says timed out", async () => {
    const { w, execs } = await running();
    w.engine.onExec = (_p, r) => {
      execs.push(r);
      return { exitCode: 124, stdout: "", stderr: "timed out", timedOut: execs.length === 1 };
    };
    const r = await execInBottle("web-1", ["sleep", "100"], { ...w.ctx, timeoutMs: 10 });
    expect(r.timedOut).toBe(true);
    const [k] = kills(execs);
    expect(k, "a kill exec follows the timeout").toBeDefined();
    expect(k!.service).toBe("agent");
    expect(k!.argv.at(-1)).toBe(`${EXEC_ENV}=${execs[0]!.env![EXEC_ENV]}`);
    // The kill itself is not cancellable: it must run even when the request was.
    expect(k!.signal).toBeUndefined();
  });

  it("a cancelled request kills the command too, then reports the cancellation", async () => {
    const { w, execs } = await running();
    const ac = new AbortController();
    w.engine.onExec = (_p, r) => {
      execs.push(r);
      if (execs.length === 1) {
        ac.abort();
        throw new Error("docker exec was cancelled");
      }
      return { exitCode: 0, stdout: "", stderr: "", timedOut: false };
    };
    await expect(execInBottle("web-1", ["sleep", "100"], { ...w.ctx, signal: ac.signal })).rejects.toThrow(/cancelled/);
    expect(kills(execs).map((k) => k.argv.at(-1))).toEqual([`${EXEC_ENV}=${execs[0]!.env![EXEC_ENV]}`]);
  });

  it("each exec gets its own id, so a kill never reaches another exec's command", async () => {
    const { w, execs } = await running();
    w.engine.onExec = (_p, r) => {
      execs.push(r);
      return { exitCode: 0, stdout: "", stderr: "", timedOut: false };
    };
    await Promise.all([execInBottle("web-1", ["true"], w.ctx), execInBottle("web-1", ["true"], w.ctx)]);
    expect(new Set(execs.map((r) => r.env![EXEC_ENV])).size).toBe(2);
  });
});

describe("bottle_exec tells docker's refusal from the command's exit", () => {
  it("'Error response from daemon' alone on stderr with no output is an error, not exit 1", async () => {
    const { w } = await running();
    w.engine.onExec = () => ({ exitCode: 1, stdout: "", stderr: "Error response from daemon: Container 5e18a9 is not running", timedOut: false });
    await expect(execInBottle("web-1", ["true"], w.ctx)).rejects.toMatchObject({
      code: "conflict",
      message: 'bottle "web-1": Error response from daemon: Container 5e18a9 is not running',
    });
  });

  it("a command that prints the same words among its own output keeps its exit code", async () => {
    const { w } = await running();
    w.engine.onExec = () => ({ exitCode: 1, stdout: "partial", stderr: "Error response from daemon: quoted by the command", timedOut: false });
    expect((await execInBottle("web-1", ["true"], w.ctx)).exitCode).toBe(1);
    w.engine.onExec = () => ({ exitCode: 2, stdout: "", stderr: "warming up\nError response from daemon: from a nested docker", timedOut: false });
    expect((await execInBottle("web-1", ["true"], w.ctx)).exitCode).toBe(2);
  });
});
