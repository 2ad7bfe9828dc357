// Which engine runs a bottle: the profile's `engine`, else the manifest's
// defaults.engine, else BOTTLE_ENGINE, else compose; recorded in metadata so
// every later call drives the bottle with the engine that started it.
import { describe, expect, it } from "vitest";
import { contextOf, withEngine } from "../../../src/bottles/context.js";
import { reviewManifest } from "../../../src/bottles/doctor.js";
import { startBottle } from "../../../src/bottles/start.js";
import { ComposeEngine, SwarmEngine } from "../../../src/engine/index.js";
import { parseManifest } from "../../../src/manifest/index.js";
import { layoutOf } from "../../../src/state/layout.js";
import { readMetadata } from "../../../src/state/metadata.js";
import { world } from "./fixture.js";

const manifest = (defaults: string) => `version: 1
${defaults}agents:
  plain:
    image: bottle-agent:latest
  onswarm:
    image: bottle-agent:latest
    engine: swarm
  oncompose:
    image: bottle-agent:latest
    engine: compose
`;

describe("engine choice", () => {
  it("takes the profile's engine, then the manifest's default, then BOTTLE_ENGINE, then compose, and records it", async () => {
    const w = world(manifest(""));
    const engineOf = async (profile: string, slug: string) => {
      await startBottle({ ...w.ctx, profile, slug });
      return readMetadata(layoutOf(w.root, slug))?.engine ?? "compose";
    };
    expect(await engineOf("plain", "a")).toBe("compose");
    expect(await engineOf("onswarm", "b")).toBe("swarm");
    w.env.BOTTLE_ENGINE = "swarm";
    expect(await engineOf("plain", "c")).toBe("swarm");
    expect(await engineOf("oncompose", "d")).toBe("compose");

    const d = world(manifest("defaults:\n  engine: swarm\n"));
    await startBottle({ ...d.ctx, profile: "plain", slug: "e" });
    expect(readMetadata(layoutOf(d.root, "e"))?.engine).toBe("swarm");
    await startBottle({ ...d.ctx, profile: "oncompose", slug: "f" });
    expect(readMetadata(layoutOf(d.root, "f"))?.engine).toBeUndefined();
  });

  it("switches a context to the engine of a bottle's kind (a fake stands in for every kind)", () => {
    const compose = contextOf({ env: { BOTTLE_STATE_DIR: "/tmp/x" }, engine: new ComposeEngine({}) });
    expect(withEngine(compose, "compose").engine).toBe(compose.engine);
    expect(withEngine(compose, undefined).engine).toBe(compose.engine);
    expect(withEngine(compose, "swarm").engine).toBeInstanceOf(SwarmEngine);
    const w = world();
    expect(withEngine(contextOf(w.ctx), "swarm").engine).toBe(w.engine);
  });

  it("doctor learns from the manifest which engines its profiles run on", () => {
    const w = world(manifest(""));
    expect(reviewManifest({ manifest: w.file, env: {} })?.engines).toEqual(["compose", "swarm"]);
    const d = world(manifest("defaults:\n  engine: swarm\n"));
    expect(reviewManifest({ manifest: d.file, env: {} })?.engines).toEqual(["swarm", "compose"]);
  });

  it("refuses an unknown engine in the manifest with the choices", () => {
    expect(() => parseManifest(manifest("defaults:\n  engine: kubernetes\n"), "bottle.yaml")).toThrow(/expected "compose" or "swarm"/);
  });
});
