// Cancelling the docker CLI does not cancel what it asked the engine to do:
// a network create reported as failed (cancelled) may exist all the same. A
// failed or cancelled start removes both of the bottle's networks.
import { describe, expect, it } from "vitest";
import { startBottle } from "../../../src/bottles/start.js";
import { listBottles } from "../../../src/bottles/list.js";
import { world } from "../bottles/fixture.js";
import { bottleLabelFilter } from "../../../src/plan/index.js";

describe("a start that fails while its networks are being created", () => {
  for (const nth of [1, 2]) {
    it(`leaves no network when create #${nth} failed after the engine made it`, async () => {
      const w = world();
      w.engine.failOn("createNetwork", { nth, after: true, error: new Error("docker network create was cancelled") });
      await expect(startBottle({ ...w.ctx, profile: "web", slug: "web-1" })).rejects.toThrow(/cancelled/);
      expect([...w.engine.networks.keys()]).toEqual([]);
      expect((await listBottles(w.ctx)).find((b) => b.slug === "web-1")).toMatchObject({ state: "failed" });
    });
  }

  it("a cancelled start (aborted signal) leaves no network either", async () => {
    const w = world();
    const ac = new AbortController();
    w.engine.failOn("createNetwork", { nth: 2, after: true, error: new Error("docker network create was cancelled") });
    ac.abort();
    await expect(startBottle({ ...w.ctx, profile: "web", slug: "web-1", signal: ac.signal })).rejects.toThrow();
    expect([...w.engine.networks.keys()]).toEqual([]);
  });

  it("a start cancelled while the engine is still creating its networks leaves none once the engine is done", async () => {
    const w = world();
    w.engine.createLatencyMs = 40;
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error("changed my mind")), 10);
    await expect(startBottle({ ...w.ctx, profile: "web", slug: "web-1", signal: ac.signal })).rejects.toThrow(/changed my mind|cancelled/);
    await new Promise((r) => setTimeout(r, 80));
    expect([...w.engine.networks.keys()]).toEqual([]);
    expect(w.engine.calls.filter((c) => c.op === "createNetwork")).toHaveLength(2);
    expect((await listBottles(w.ctx)).find((b) => b.slug === "web-1")).toMatchObject({ state: "failed" });
  });

  it("a start whose `up` was cancelled removes a container the engine made after compose stopped listening", async () => {
    const w = world();
    w.engine.failOn("up", { after: true, error: new Error("docker compose up was cancelled") });
    // Made by the engine outside the project compose took down: only its labels say whose it is.
    w.engine.plant(bottleLabelFilter("web-1", w.root), ["agent"]);
    await expect(startBottle({ ...w.ctx, profile: "web", slug: "web-1" })).rejects.toThrow(/cancelled/);
    expect(await w.engine.list(bottleLabelFilter("web-1", w.root))).toEqual({ containers: [], networks: [] });
    expect((await listBottles(w.ctx)).find((b) => b.slug === "web-1")).toMatchObject({ state: "failed" });
  });
});
