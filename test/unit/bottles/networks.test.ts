// The network allocator against the in-memory engine: /28s from the pool,
// retried past subnets another start took meanwhile, and a nearly full pool
// still fills up when a retry would have skipped ahead.
import { afterEach, describe, expect, it, vi } from "vitest";
import { allocateNetworks } from "../../../src/bottles/networks.js";
import { FakeEngine } from "../../../src/engine/fake.js";
import type { NetworkPlan, Subnets } from "../../../src/plan/index.js";

const make = (s: Subnets): { internal: NetworkPlan; egress: NetworkPlan } => ({
  internal: { name: "b-internal", subnet: s.internal, internal: true, bridge: "br-i", labels: {} },
  egress: { name: "b-egress", subnet: s.egress, internal: false, bridge: "br-e", labels: {} },
});

/** An engine whose first answer about used subnets is stale: `raced` is taken by the time we create. */
function racingEngine(raced: string[]): FakeEngine {
  const engine = new FakeEngine();
  const used = engine.usedSubnets.bind(engine);
  let first = true;
  engine.usedSubnets = async () => {
    const r = await used();
    if (first) {
      first = false;
      engine.takenSubnets.push(...raced);
    }
    return r;
  };
  return engine;
}

afterEach(() => vi.restoreAllMocks());

describe("allocateNetworks", () => {
  it("gives a bottle two adjacent /28s of the pool, skipping what Docker uses", async () => {
    const engine = new FakeEngine();
    engine.takenSubnets.push("172.17.0.0/16", "10.213.0.0/28");
    const nets = await allocateNetworks(engine, make, "10.213.0.0/16");
    expect([nets.internal.subnet, nets.egress.subnet]).toEqual(["10.213.0.16/28", "10.213.0.32/28"]);
  });
  it("retries past a subnet taken between asking and creating, and fills a nearly full pool", async () => {
    // Pool of four /28s; a racing start takes the first two. The retry skips a
    // random number of free subnets to spread racing starts: with only two left
    // it must fall back to those two rather than fail.
    const engine = racingEngine(["10.213.0.0/27"]);
    vi.spyOn(Math, "random").mockReturnValue(0.9);
    const nets = await allocateNetworks(engine, make, "10.213.0.0/26");
    expect([nets.internal.subnet, nets.egress.subnet]).toEqual(["10.213.0.32/28", "10.213.0.48/28"]);
    // Both at once: the first try made the egress network, which was removed before the retry.
    expect(engine.calls.filter((c) => c.op === "createNetwork")).toHaveLength(4);
    expect(engine.networks.size).toBe(2);
  });
  it("says the pool is full when it is", async () => {
    const engine = new FakeEngine();
    engine.takenSubnets.push("10.213.0.0/27");
    await expect(allocateNetworks(engine, make, "10.213.0.0/27")).rejects.toThrow(/no free \/28 left in the subnet pool/);
  });
});
