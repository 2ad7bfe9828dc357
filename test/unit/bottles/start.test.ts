// start, stop and rollback against the in-memory engine: every step that can
// fail leaves nothing behind (no networks, no project, no isolation rule, no
// lock), and the bottle is recorded as failed with the reason.
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { startBottle } from "../../../src/bottles/start.js";
import { stopBottle } from "../../../src/bottles/stop.js";
import type { EngineOp } from "../../../src/engine/engine.js";
import type { BottleError } from "../../../src/errors.js";
import { layoutOf, readyFileOf } from "../../../src/state/layout.js";
import { acquireLock, type Lock } from "../../../src/state/lock.js";
import { readMetadata } from "../../../src/state/metadata.js";
import { MANIFEST, world } from "./fixture.js";

describe("start against the fake engine", () => {
  it("creates two networks, isolates the internal bridge, brings the project up and records it running", async () => {
    const w = world();
    const r = await startBottle({ ...w.ctx, profile: "web", slug: "web-1" });
    const l = layoutOf(w.root, "web-1");
    expect(r.metadata.state).toBe("running");
    expect(readMetadata(l)?.state).toBe("running");
    expect([...w.engine.networks.keys()].sort()).toEqual(["bottle-web-1-egress", "bottle-web-1-internal"]);
    expect(w.engine.isolated.size).toBe(1);
    expect([...w.engine.projects.keys()]).toEqual(["bottle-web-1"]);
    expect(
      w.engine.projects
        .get("bottle-web-1")!
        .containers.map((c) => c.service)
        .sort(),
    ).toEqual(["agent", "egress", "firewall", "git-gate", "supervise"]);
    expect(existsSync(l.planInputFile)).toBe(true);
    expect(JSON.parse(readFileSync(l.accessFile, "utf8")).domains).toEqual(["api.anthropic.com", "api.github.com"]);
    expect(existsSync(l.lockFile)).toBe(false);
  });

  const steps: Array<[string, EngineOp, { nth?: number; after?: boolean }]> = [
    ["building images", "ensureImages", {}],
    ["listing used subnets", "usedSubnets", {}],
    ["creating the internal network", "createNetwork", { nth: 1 }],
    ["creating the egress network", "createNetwork", { nth: 2 }],
    ["isolating the bridge", "isolate", {}],
    ["bringing the project up", "up", {}],
    ["a half-done up", "up", { after: true }],
  ];
  it.each(steps)("a failure %s leaves nothing behind", async (_what, op, o) => {
    const w = world();
    w.engine.failOn(op, { ...o, error: new Error(`boom at ${op}`) });
    const err = await startBottle({ ...w.ctx, profile: "web", slug: "web-1" }).catch((e: unknown) => e as BottleError);
    expect((err as BottleError).message).toContain(`boom at ${op}`);
    expect(w.engine.networks.size).toBe(0);
    expect(w.engine.projects.size).toBe(0);
    expect(w.engine.isolated.size).toBe(0);
    const meta = readMetadata(layoutOf(w.root, "web-1"));
    expect(meta?.state).toBe("failed");
    expect(meta?.error).toContain(`boom at ${op}`);
    expect(existsSync(layoutOf(w.root, "web-1").lockFile)).toBe(false);
  });

  it("a rollback step that fails is named in the start's error after the cause, not swallowed", async () => {
    const w = world();
    w.engine.failOn("up", { error: new Error("boom at up") });
    w.engine.failOn("removeNetworks", { error: new Error("network still in use on node-2") });
    const err = (await startBottle({ ...w.ctx, profile: "web", slug: "web-1" }).catch((e: unknown) => e)) as BottleError;
    expect(err.message).toMatch(/boom at up[\s\S]*rollback left: network still in use on node-2/);
    expect(err.hint).toMatch(/bottle cleanup/);
    expect(readMetadata(layoutOf(w.root, "web-1"))?.error).toContain("rollback left");
  });

  it("returns only once every sidecar wrote its ready file, and probes pipelock with its own command until it answers", async () => {
    const w = world(`${MANIFEST}  piped:\n    image: bottle-agent:latest\n    firewall: pipelock\n    network:\n      allow: [example.test]\n`);
    let probes = 0;
    w.engine.onExec = (_p, r) => {
      if (r.argv[0] === "/pipelock") probes++;
      return { exitCode: probes >= 3 ? 0 : 1, stdout: "", stderr: "", timedOut: false };
    };
    const r = await startBottle({ ...w.ctx, profile: "piped", slug: "piped-1" });
    expect(r.metadata.state).toBe("running");
    expect(probes).toBe(3);
    const web = await startBottle({ ...w.ctx, profile: "web", slug: "web-1" });
    expect(web.metadata.state).toBe("running");
    for (const s of ["firewall", "egress", "git-gate", "supervise"]) expect(existsSync(readyFileOf(layoutOf(w.root, "web-1"), s))).toBe(true);
  });

  it("a sidecar that never says it is ready fails the start by name after the timeout, and leaves nothing behind", async () => {
    const w = world();
    w.engine.neverReady.add("git-gate");
    const err = (await startBottle({ ...w.ctx, profile: "web", slug: "web-1", readyTimeoutMs: 200 }).catch((e: unknown) => e)) as BottleError;
    expect(err.message).toMatch(/not ready after .*git-gate/);
    expect(w.engine.projects.size).toBe(0);
    expect(w.engine.networks.size).toBe(0);
    expect(w.engine.isolated.size).toBe(0);
    expect(readMetadata(layoutOf(w.root, "web-1"))?.state).toBe("failed");
  });

  it("a sidecar that exits while starting fails the start at once, naming it, without waiting for the timeout", async () => {
    const w = world();
    w.engine.crashOnStart.add("egress");
    const t0 = Date.now();
    const err = (await startBottle({ ...w.ctx, profile: "web", slug: "web-1" }).catch((e: unknown) => e)) as BottleError;
    expect(err.message).toMatch(/bottle-egress-web-1 exited \(1\) before it was ready/);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(w.engine.projects.size).toBe(0);
    expect(readMetadata(layoutOf(w.root, "web-1"))?.state).toBe("failed");
  });

  it("a failure while preparing the state dir (a trust file that is gone) leaves nothing behind", async () => {
    const w = world();
    const err = (await startBottle({ ...w.ctx, profile: "broken", slug: "broken-1" }).catch((e: unknown) => e)) as BottleError;
    expect(err.message).toContain("no-such-ca.pem");
    expect(w.engine.networks.size).toBe(0);
    expect(w.engine.projects.size).toBe(0);
    expect(w.engine.isolated.size).toBe(0);
    expect(w.engine.calls.some((c) => c.op === "up")).toBe(false);
    expect(readMetadata(layoutOf(w.root, "broken-1"))?.state).toBe("failed");
  });

  it("retries on a subnet another network took meanwhile", async () => {
    const w = world();
    let first = true;
    const used = w.engine.usedSubnets.bind(w.engine);
    // The subnet looks free when asked, but is taken by the time we create the network.
    w.engine.usedSubnets = async () => {
      const r = await used();
      if (first) {
        first = false;
        w.engine.takenSubnets.push("10.213.0.0/28");
      }
      return r;
    };
    await startBottle({ ...w.ctx, profile: "web", slug: "web-1" });
    // Both networks are created at once: the one that got its subnet is removed before the retry.
    expect(w.engine.calls.filter((c) => c.op === "createNetwork").length).toBe(4);
    expect(w.engine.calls.filter((c) => c.op === "removeNetworks").length).toBe(1);
    expect([...w.engine.networks.values()].map((n) => n.subnet)).not.toContain("10.213.0.0/28");
    expect(w.engine.networks.size).toBe(2);
  });

  it("of two starts of one slug exactly one wins; the other is a conflict", async () => {
    const w = world();
    const results = await Promise.allSettled([startBottle({ ...w.ctx, profile: "web", slug: "web-1" }), startBottle({ ...w.ctx, profile: "web", slug: "web-1" })]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect((lost.reason as BottleError).code).toBe("conflict");
    expect(w.engine.projects.size).toBe(1);
  });

  it("takes over a lock whose process is gone", async () => {
    const w = world();
    const dead = spawnSync("true");
    const l = layoutOf(w.root, "web-1");
    const { mkdirSync, writeFileSync } = await import("node:fs");
    mkdirSync(`${w.root}/.locks`, { recursive: true });
    writeFileSync(l.lockFile, String(dead.pid));
    await startBottle({ ...w.ctx, profile: "web", slug: "web-1" });
    expect(readMetadata(l)?.state).toBe("running");
  });

  it("stop takes everything down once; a second stop changes nothing; purge removes the state dir", async () => {
    const w = world();
    await startBottle({ ...w.ctx, profile: "web", slug: "web-1" });
    const first = await stopBottle("web-1", w.ctx);
    expect(first).toMatchObject({ state: "stopped", wasState: "running" });
    expect(w.engine.networks.size + w.engine.projects.size + w.engine.isolated.size).toBe(0);
    const calls = w.engine.calls.length;
    expect(await stopBottle("web-1", w.ctx)).toMatchObject({ state: "stopped", wasState: "stopped" });
    expect(w.engine.calls.length).toBe(calls);
    await stopBottle("web-1", { ...w.ctx, purge: true });
    expect(existsSync(layoutOf(w.root, "web-1").stateDir)).toBe(false);
  });
});

describe("the bottle lock", () => {
  it("of many acquirers racing in one process exactly one holds it (a lock is never seen without its pid)", async () => {
    const w = world();
    const l = layoutOf(w.root, "race-1");
    for (let round = 0; round < 20; round++) {
      const results = await Promise.allSettled(Array.from({ length: 8 }, () => acquireLock(l)));
      const held = results.filter((r): r is PromiseFulfilledResult<Lock> => r.status === "fulfilled");
      expect(held).toHaveLength(1);
      for (const r of results) if (r.status === "rejected") expect((r.reason as BottleError).code).toBe("conflict");
      await held[0]!.value.release();
    }
  });
});
