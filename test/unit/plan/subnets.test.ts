import { describe, expect, it } from "vitest";
import { overlaps, pickFreeSubnets, subnetsOf } from "../../../src/plan/subnets.js";

describe("subnet allocation", () => {
  it("splits a pool into /24s", () => {
    const s = subnetsOf("10.213.0.0/16");
    expect(s).toHaveLength(256);
    expect(s[0]).toBe("10.213.0.0/24");
    expect(s[255]).toBe("10.213.255.0/24");
  });
  it("rejects a malformed pool", () => {
    expect(() => subnetsOf("10.213.0.1/16")).toThrow(/invalid subnet pool/);
    expect(() => subnetsOf("nonsense")).toThrow(/invalid subnet pool/);
    expect(() => subnetsOf("10.0.0.0/25")).toThrow(/invalid subnet pool/);
  });
  it("detects overlaps both ways", () => {
    expect(overlaps("10.213.0.0/24", "10.213.0.0/16")).toBe(true);
    expect(overlaps("10.213.0.0/16", "10.213.5.0/24")).toBe(true);
    expect(overlaps("10.213.0.0/24", "10.213.1.0/24")).toBe(false);
    expect(overlaps("10.213.0.0/24", "fd00::/64")).toBe(false);
  });
  it("skips subnets any existing network uses", () => {
    expect(pickFreeSubnets("10.213.0.0/16", ["10.213.0.0/24", "10.213.2.0/23", "172.17.0.0/16"], 2)).toEqual(["10.213.1.0/24", "10.213.4.0/24"]);
  });
  it("fails clearly when the pool is exhausted", () => {
    expect(() => pickFreeSubnets("10.213.0.0/23", ["10.213.0.0/24"], 2)).toThrow(/no free \/24 left in the subnet pool 10\.213\.0\.0\/23/);
  });
});
