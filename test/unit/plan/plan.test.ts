import { describe, expect, it } from "vitest";
import { BottleError } from "../../../src/errors.js";
import { bridgeName, resolvePlan } from "../../../src/plan/index.js";
import { defaultSlug, validateSlug } from "../../../src/state/slug.js";
import { planInputOf, planOf } from "../../fixtures/shapes.js";

describe("slugs", () => {
  it.each(["a", "implementer-7f3a", "a".repeat(40), "0-9"])("accepts %j", (s) => expect(validateSlug(s)).toBe(s));
  it.each(["", "A", "a_b", "a".repeat(41), "../etc", "a/b", "-a", "a b", "a.b", "ä"])("rejects %j", (s) => {
    expect(() => validateSlug(s)).toThrow(BottleError);
    expect(() => validateSlug(s)).toThrow(/expected 1-40 characters/);
  });
  it("rejects non-strings", () => expect(() => validateSlug(42)).toThrow(/invalid slug number/));
  it("defaults to <profile>-<4 hex>", () => {
    expect(defaultSlug("implementer", () => "7f3a")).toBe("implementer-7f3a");
    expect(defaultSlug("implementer")).toMatch(/^implementer-[0-9a-f]{4}$/);
  });
});

describe("plan", () => {
  it("fixes every path under the slug's state dir", () => {
    const p = planOf("everything");
    const { root, slug, stateDir, lockFile, ...files } = p.paths;
    expect([root, slug, stateDir]).toEqual(["/state", "everything-7f3a", "/state/everything-7f3a"]);
    for (const v of Object.values(files)) expect(v.startsWith("/state/everything-7f3a/")).toBe(true);
    // The lock sits beside the bottle dirs: a purge never drops a held lock.
    expect(lockFile).toBe("/state/.locks/everything-7f3a.lock");
  });
  it("derives bridge names that fit IFNAMSIZ and differ per network", () => {
    const p = planOf("minimal", { slug: "x".repeat(40) });
    expect(p.networks.internal.bridge.length).toBeLessThanOrEqual(15);
    expect(p.networks.internal.bridge).not.toBe(p.networks.egress.bridge);
    expect(bridgeName("a")).toBe(bridgeName("a"));
  });
  it("allows routed hosts through the firewall and passes them through TLS untouched, on the route's port only", () => {
    const p = planOf("egress");
    expect(p.firewall.allow).toEqual(["api.anthropic.com", "*.npmjs.org", "api.github.com"]);
    expect(p.firewall.passthrough).toEqual([{ host: "api.github.com", port: 443 }]);
    const ports = planOf(
      'version: 1\nagents:\n  p:\n    image: x\n    egress:\n      routes:\n        - { host: api.test, port: 8443, header: X-K, value: "${K}" }\n        - { host: api.test, port: 8443, path_prefix: /v2, header: X-K, value: "${K}" }\n        - { host: api.test, header: X-K, value: "${K}" }\n',
    );
    expect(ports.firewall.passthrough).toEqual([
      { host: "api.test", port: 8443 },
      { host: "api.test", port: 443 },
    ]);
    expect(p.egress!.envNames).toEqual(["GITHUB_TOKEN"]);
  });
  it("uses the given subnets, or preview ones", () => {
    expect(planOf("minimal").networks.internal.subnet).toBe("10.213.4.0/24");
    const { subnets: _allocated, ...preview } = planInputOf("minimal");
    expect(resolvePlan(preview).networks.internal.subnet).toBe("10.213.0.0/28");
  });
  it("refuses a bad slug before anything else", () => expect(() => planOf("minimal", { slug: "../../etc" })).toThrow(/invalid slug/));
  it("gives clone URLs through the gate", () => expect(planOf("git").gitGate!.upstreams[0]!.cloneUrl).toBe("git://bottle-git-gate-git-7f3a/app"));
});
