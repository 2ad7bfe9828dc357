// The destination check answers in the caller's own turn when nothing is
// left to wait for (an IP literal, a refused name, answers a caching
// resolver already has), and those answers are judged exactly like fresh
// ones: a cached answer pointing somewhere private is still refused.
import { describe, expect, it } from "vitest";
import { parseCidrs } from "../../../../src/security/address.js";
import { compileAllowlist } from "../../../../src/security/allowlist.js";
import { cachingResolver, checkDestination, type DestinationPolicy } from "../../../../src/sidecars/proxy/destination.js";

function policy(answers: Record<string, string[]>, allowCidrs: string[] = []): { p: DestinationPolicy; lookups: string[] } {
  const lookups: string[] = [];
  const resolve = cachingResolver(async (name) => {
    lookups.push(name);
    const a = answers[name];
    if (!a) throw Object.assign(new Error("not found"), { code: "ENOTFOUND" });
    return a;
  });
  return { p: { allow: compileAllowlist(["public.test", "inside.test", "missing.test", "10.1.2.3"]), allowCidrs: parseCidrs(allowCidrs), resolve }, lookups };
}

describe("checkDestination", () => {
  it("waits for the first lookup of a name, then answers cached names in the same turn, judged the same", async () => {
    const { p, lookups } = policy({ "public.test": ["93.184.216.34"], "inside.test": ["10.0.0.5"] });
    const first = checkDestination(p, "public.test");
    expect(first).toBeInstanceOf(Promise);
    expect(await first).toEqual({ ok: true, host: "public.test", address: "93.184.216.34" });
    expect(checkDestination(p, "PUBLIC.test.")).toEqual({ ok: true, host: "public.test", address: "93.184.216.34" });

    const refused = await checkDestination(p, "inside.test");
    expect(refused).toMatchObject({ ok: false, rule: "ssrf", status: 403 });
    // Cached, still refused: the answer is classified again, not trusted because it was seen.
    expect(checkDestination(p, "inside.test")).toEqual(refused);
    expect(lookups).toEqual(["public.test", "inside.test"]);
  });

  it("never caches a failed lookup: each try asks again and waits", async () => {
    const { p, lookups } = policy({});
    for (let i = 0; i < 2; i++) {
      const r = checkDestination(p, "missing.test");
      expect(r).toBeInstanceOf(Promise);
      expect(await r).toMatchObject({ ok: false, rule: "dns", status: 502, reason: 'cannot resolve host "missing.test" (ENOTFOUND)' });
    }
    expect(lookups).toEqual(["missing.test", "missing.test"]);
  });

  it("answers IP literals and names off the allowlist without a lookup", () => {
    const { p, lookups } = policy({});
    // Every spelling, every time (host texts are parsed once and remembered): judged by the policy in hand.
    for (let i = 0; i < 2; i++)
      for (const spelling of ["10.1.2.3", "0x0a.1.2.3", "167838211", "[::ffff:10.1.2.3]"]) {
        expect(checkDestination(p, spelling), spelling).toMatchObject({ ok: false, rule: "ssrf" });
        expect(checkDestination(policy({}, ["10.0.0.0/8"]).p, spelling), spelling).toMatchObject({ ok: true, address: "10.1.2.3" });
      }
    expect(checkDestination(p, "elsewhere.test")).toMatchObject({ ok: false, rule: "allowlist" });
    expect(lookups).toEqual([]);
  });

  it("a resolver that throws instead of rejecting is a DNS failure, not a crash", () => {
    const p: DestinationPolicy = {
      allow: compileAllowlist(["public.test"]),
      allowCidrs: [],
      resolve: () => {
        throw Object.assign(new Error("boom"), { code: "EAI_AGAIN" });
      },
    };
    expect(checkDestination(p, "public.test")).toMatchObject({ ok: false, rule: "dns", reason: 'cannot resolve host "public.test" (EAI_AGAIN)' });
  });
});
