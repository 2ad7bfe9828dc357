import { describe, expect, it } from "vitest";
import { DEFAULT_SUBNET_POOL } from "../../../src/plan/plan.js";
import { hostAddress, overlaps, pickFreeSubnets, SUBNET_PREFIX, subnetsOf } from "../../../src/plan/subnets.js";

describe("subnet allocation", () => {
  it("splits a pool into /28s by default, or the prefix asked for", () => {
    const s = subnetsOf("10.213.0.0/16");
    expect(s).toHaveLength(4096);
    expect(s[0]).toBe("10.213.0.0/28");
    expect(s[1]).toBe("10.213.0.16/28");
    expect(s[4095]).toBe("10.213.255.240/28");
    expect(subnetsOf("10.213.0.0/16", 24)[255]).toBe("10.213.255.0/24");
  });
  it("a /28 has room for every container of a bottle's busiest network", () => {
    // gateway + firewall + egress + git gate + supervise + agent, of the
    // addresses left after the network and broadcast address.
    expect(2 ** (32 - SUBNET_PREFIX) - 2).toBeGreaterThanOrEqual(6);
  });
  it("rejects a malformed pool", () => {
    expect(() => subnetsOf("10.213.0.1/16")).toThrow(/invalid subnet pool/);
    expect(() => subnetsOf("nonsense")).toThrow(/invalid subnet pool/);
    expect(() => subnetsOf("10.0.0.0/29")).toThrow(/invalid subnet pool/);
    expect(() => pickFreeSubnets("10.0.0.0/7", [], 1)).toThrow(/invalid subnet pool/);
    expect(() => pickFreeSubnets("fd00::/64", [], 1)).toThrow(/invalid subnet pool/);
  });
  it("detects overlaps both ways", () => {
    expect(overlaps("10.213.0.0/24", "10.213.0.0/16")).toBe(true);
    expect(overlaps("10.213.0.0/16", "10.213.5.0/24")).toBe(true);
    expect(overlaps("10.213.0.0/24", "10.213.1.0/24")).toBe(false);
    expect(overlaps("10.213.0.0/24", "fd00::/64")).toBe(false);
  });
  it("skips subnets any existing network uses, whatever their size", () => {
    const used = ["10.213.0.0/28", "10.213.0.32/27", "10.213.0.70/31", "172.17.0.0/16", "fd00::/64", "not-a-cidr"];
    expect(pickFreeSubnets("10.213.0.0/16", used, 3)).toEqual(["10.213.0.16/28", "10.213.0.80/28", "10.213.0.96/28"]);
    // A network wider than ours (an old /24 bottle, a user's /20) hides every /28 inside it.
    expect(pickFreeSubnets("10.213.0.0/16", ["10.213.0.0/24", "10.213.0.0/20"], 1)).toEqual(["10.213.16.0/28"]);
    // A used network wider than the whole pool leaves nothing.
    expect(() => pickFreeSubnets("10.213.0.0/24", ["10.0.0.0/8"], 1)).toThrow(/no free \/28/);
  });
  it("picks the same as filtering the full list, with skip", () => {
    const used = ["10.213.0.0/28", "10.213.1.0/24", "10.213.2.48/28", "10.213.3.0/25"];
    const free = subnetsOf("10.213.0.0/22").filter((s) => !used.some((u) => overlaps(s, u)));
    for (const skip of [0, 1, 7, 36]) expect(pickFreeSubnets("10.213.0.0/22", used, 2, skip)).toEqual(free.slice(skip, skip + 2));
  });
  it("the default pool holds 1,000 bottles' network pairs, each apart from all others and from Docker's networks", () => {
    const used = ["172.17.0.0/16", "172.18.0.0/16"];
    for (let i = 0; i < 1000; i++) used.push(...pickFreeSubnets(DEFAULT_SUBNET_POOL, used, 2));
    const ours = used.slice(2);
    expect(new Set(ours).size).toBe(2000);
    expect(ours.every((s) => s.endsWith(`/${SUBNET_PREFIX}`) && overlaps(s, DEFAULT_SUBNET_POOL))).toBe(true);
    // Sorted by address, neighbours never overlap, so no two do.
    const sorted = [...ours].sort((a, b) => addr(a) - addr(b));
    expect(sorted.every((s, i) => i === 0 || !overlaps(s, sorted[i - 1]!))).toBe(true);
    // And there is room for more.
    expect(pickFreeSubnets(DEFAULT_SUBNET_POOL, used, 2)).toHaveLength(2);
  });
  it("names a subnet's host addresses, and only those", () => {
    expect(hostAddress("10.213.0.16/28", 1)).toBe("10.213.0.17");
    expect(hostAddress("10.213.0.16/28", 14)).toBe("10.213.0.30");
    expect(hostAddress("10.213.4.0/24", 53)).toBe("10.213.4.53");
    expect(() => hostAddress("10.213.0.16/28", 15)).toThrow(/no host 15 in 10\.213\.0\.16\/28 \(it has hosts 1-14\)/);
    expect(() => hostAddress("10.213.0.16/28", 0)).toThrow(/no host 0/);
  });
  it("fails clearly when the pool is exhausted", () => {
    expect(() => pickFreeSubnets("10.213.0.0/27", ["10.213.0.0/28"], 2)).toThrow(/no free \/28 left in the subnet pool 10\.213\.0\.0\/27/);
    expect(() => pickFreeSubnets("10.213.0.0/27", [], 2, 1)).toThrow(/no free \/28 left/);
  });
});

function addr(cidr: string): number {
  return cidr
    .split("/")[0]!
    .split(".")
    .reduce((acc, b) => acc * 256 + Number(b), 0);
}
