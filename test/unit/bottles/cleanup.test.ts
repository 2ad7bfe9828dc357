// cleanup against the in-memory engine: what no live bottle owns goes; a
// healthy running bottle and a live lock are never touched.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { cleanup } from "../../../src/bottles/cleanup.js";
import { startBottle } from "../../../src/bottles/start.js";
import { bottleLabels } from "../../../src/plan/index.js";
import { layoutOf, locksDir } from "../../../src/state/layout.js";
import { readMetadata } from "../../../src/state/metadata.js";
import { world } from "./fixture.js";

describe("cleanup against the fake engine", () => {
  it("removes containers of a bottle with no state dir", async () => {
    const w = world();
    w.engine.plant(bottleLabels("ghost-1", "web", w.root), ["firewall", "agent"]);
    const r = await cleanup(w.ctx);
    expect(r.removed).toEqual([{ slug: "ghost-1", reason: "Docker objects with no state dir", containers: ["bottle-firewall-ghost-1", "bottle-agent-ghost-1"], networks: [] }]);
    expect(w.engine.planted).toHaveLength(0);
  });

  it("marks a bottle recorded as running whose containers are gone as failed, and removes its networks", async () => {
    const w = world();
    await startBottle({ ...w.ctx, profile: "web", slug: "web-1" });
    w.engine.projects.clear(); // the containers died with the engine
    const r = await cleanup(w.ctx);
    expect(r.removed.map((x) => [x.slug, x.reason])).toEqual([["web-1", "recorded as running but no containers exist"]]);
    expect(w.engine.networks.size).toBe(0);
    expect(readMetadata(layoutOf(w.root, "web-1"))?.state).toBe("failed");
    expect(r.staleRules).toHaveLength(1); // the isolation rule of its bridge, now gone
  });

  it("leaves a running bottle with every container up alone", async () => {
    const w = world();
    await startBottle({ ...w.ctx, profile: "web", slug: "web-1" });
    const r = await cleanup(w.ctx);
    expect(r).toEqual({ removed: [], staleLocks: [], staleRules: [] });
    expect(w.engine.projects.size).toBe(1);
    expect(readMetadata(layoutOf(w.root, "web-1"))?.state).toBe("running");
  });

  it("removes a stale lock and keeps a live one", async () => {
    const w = world();
    mkdirSync(locksDir(w.root), { recursive: true });
    const dead = spawnSync("true");
    writeFileSync(layoutOf(w.root, "gone").lockFile, String(dead.pid));
    writeFileSync(layoutOf(w.root, "busy").lockFile, String(process.pid));
    const r = await cleanup(w.ctx);
    expect(r.staleLocks).toEqual(["gone"]);
    expect(existsSync(layoutOf(w.root, "busy").lockFile)).toBe(true);
  });
});
