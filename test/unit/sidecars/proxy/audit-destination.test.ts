// Red-team probes of the firewall's destination check (allowlist, then
// SSRF on every DNS answer): answers in every spelling of a blocked
// address, mixed answer sets, answers that change between lookups
// (rebinding), CIDR exceptions that must not cross address families, and
// the small answer cache in front of the system resolver.
import { describe, expect, it } from "vitest";
import { parseCidrs } from "../../../../src/security/address.js";
import { compileAllowlist } from "../../../../src/security/allowlist.js";
import { cachingResolver, checkDestination, type DestinationPolicy, type Resolver } from "../../../../src/sidecars/proxy/destination.js";

const policy = (resolve: Resolver, allowCidrs: string[] = [], allow = ["api.example.test", "*.wild.test", "203.0.114.9"]): DestinationPolicy => ({
  allow: compileAllowlist(allow),
  allowCidrs: parseCidrs(allowCidrs),
  resolve,
});
const answering =
  (...answers: string[]): Resolver =>
  async () =>
    answers;

describe("checkDestination: every DNS answer is judged as the address it is", () => {
  const blockedAnswers: Array<[string, string]> = [
    ["127.0.0.1", "loopback"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["0:0:0:0:0:ffff:7f00:0001", "loopback"],
    ["::1", "loopback"],
    ["::127.0.0.1", "loopback"],
    ["::ffff:0:7f00:1", "IPv4-translated"],
    ["64:ff9b::a9fe:a9fe", "NAT64"],
    ["64:ff9b:1::a9fe:a9fe", "NAT64"],
    ["2002:a9fe:a9fe::", "6to4"],
    ["2001:0:4136:e378:8000:63bf:3fff:fdd2", "IETF protocol assignment"],
    ["169.254.169.254", "cloud metadata"],
    ["::ffff:169.254.169.254", "cloud metadata"],
    ["fd00:ec2::254", "cloud metadata"],
    ["fe80::1%eth0", "link-local"],
    ["100.100.100.200", "carrier-grade NAT"],
    ["0.0.0.0", "unspecified"],
    ["::", "unspecified"],
  ];
  it.each(blockedAnswers)("an answer of %s is refused as %s", async (answer, label) => {
    const d = await checkDestination(policy(answering(answer)), "api.example.test");
    expect(d).toMatchObject({ ok: false, status: 403, rule: "ssrf" });
    expect(d.ok ? "" : d.reason).toContain(`the ${label} address`);
  });

  it("dials the first answer that passes, in its canonical form, never a blocked one listed before it", async () => {
    const d = await checkDestination(policy(answering("10.0.0.1", "::ffff:127.0.0.1", "garbage", "::ffff:203.0.114.9", "203.0.114.10")), "api.example.test");
    expect(d).toEqual({ ok: true, host: "api.example.test", address: "203.0.114.9" });
  });

  it("answers that are not addresses are skipped; none left is a refusal, not a dial", async () => {
    const d = await checkDestination(policy(answering("not-an-ip", "", "1.2.3.4.5")), "api.example.test");
    expect(d).toMatchObject({ ok: false, rule: "ssrf" });
    expect(d.ok ? "" : d.reason).toContain("has no usable address");
  });

  it("an IPv4 CIDR exception opens the address in the spellings that mean it (and dials the IPv4 form), not translated or NAT64 ones", async () => {
    const cidrs = ["10.9.0.0/16"];
    expect(await checkDestination(policy(answering("10.9.1.2"), cidrs), "api.example.test")).toMatchObject({ ok: true, address: "10.9.1.2" });
    expect(await checkDestination(policy(answering("::ffff:10.9.1.2"), cidrs), "api.example.test")).toMatchObject({ ok: true, address: "10.9.1.2" });
    expect(await checkDestination(policy(answering("::10.9.1.2"), cidrs), "api.example.test")).toMatchObject({ ok: true, address: "10.9.1.2" });
    expect(await checkDestination(policy(answering("::ffff:0:a09:102"), cidrs), "api.example.test")).toMatchObject({ ok: false, rule: "ssrf" });
    expect(await checkDestination(policy(answering("64:ff9b::a09:102"), cidrs), "api.example.test")).toMatchObject({ ok: false, rule: "ssrf" });
  });

  it("a name outside the allowlist is never resolved; an allowed wildcard name is", async () => {
    const asked: string[] = [];
    const resolve: Resolver = async (n) => {
      asked.push(n);
      return ["203.0.114.9"];
    };
    expect(await checkDestination(policy(resolve), "evil.test")).toMatchObject({ ok: false, rule: "allowlist" });
    expect(await checkDestination(policy(resolve), "wild.test")).toMatchObject({ ok: false, rule: "allowlist" });
    expect(await checkDestination(policy(resolve), "A.Wild.Test.")).toMatchObject({ ok: true, host: "a.wild.test" });
    expect(asked).toEqual(["a.wild.test"]);
  });

  it("IP literals: the SSRF verdict comes first, then the allowlist wants the exact address; no lookup either way", async () => {
    const asked: string[] = [];
    const resolve: Resolver = async (n) => {
      asked.push(n);
      return ["203.0.114.9"];
    };
    expect(await checkDestination(policy(resolve), "0xa9.0xfe.0xa9.0xfe")).toMatchObject({ ok: false, rule: "ssrf", host: "169.254.169.254" });
    expect(await checkDestination(policy(resolve), "[::ffff:a9fe:a9fe]")).toMatchObject({ ok: false, rule: "ssrf" });
    expect(await checkDestination(policy(resolve), "3405804041")).toMatchObject({ ok: true, host: "203.0.114.9", address: "203.0.114.9" });
    expect(await checkDestination(policy(resolve), "0313.0.0162.011")).toMatchObject({ ok: true, address: "203.0.114.9" });
    expect(await checkDestination(policy(resolve, [], ["*.114.9", "api.example.test"]), "203.0.114.9")).toMatchObject({ ok: false, rule: "allowlist" });
    expect(asked).toEqual([]);
  });
});

describe("rebinding: the address checked is the address dialed", () => {
  it("a resolver that flips between a public and a private answer never yields the private one as a destination", async () => {
    let n = 0;
    const flipping: Resolver = async () => (n++ % 2 ? ["127.0.0.1"] : ["203.0.114.9"]);
    const results = await Promise.all(Array.from({ length: 20 }, () => checkDestination(policy(flipping), "api.example.test")));
    for (const d of results) {
      if (d.ok) expect(d.address).toBe("203.0.114.9");
      else expect(d).toMatchObject({ rule: "ssrf" });
    }
    expect(results.filter((d) => d.ok)).toHaveLength(10);
  });

  it("the answer cache keeps one answer for its lifetime, forgets failures, and stays bounded", async () => {
    let calls = 0;
    let fail = true;
    const inner: Resolver = async (name) => {
      calls++;
      if (name === "flaky.test" && fail) throw Object.assign(new Error("temporary"), { code: "EAI_AGAIN" });
      return [calls % 2 ? "203.0.114.9" : "127.0.0.1"];
    };
    const cached = cachingResolver(inner, 60_000, 3);
    const first = await cached("a.test");
    expect(await cached("a.test")).toEqual(first);
    expect(calls).toBe(1);
    await expect(cached("flaky.test")).rejects.toMatchObject({ code: "EAI_AGAIN" });
    fail = false;
    expect(await cached("flaky.test")).toHaveLength(1);
    expect(calls).toBe(3);
    for (const h of ["b.test", "c.test", "d.test", "e.test"]) await cached(h);
    // Past maxEntries the cache starts over: a.test is asked again.
    const before = calls;
    await cached("a.test");
    expect(calls).toBe(before + 1);
  });

  it("a cached answer is judged again under the current CIDR exceptions (a reload that drops one applies at once)", async () => {
    const cached = cachingResolver(answering("10.9.1.2"), 60_000);
    expect(await checkDestination(policy(cached, ["10.9.0.0/16"]), "api.example.test")).toMatchObject({ ok: true, address: "10.9.1.2" });
    expect(await checkDestination(policy(cached, []), "api.example.test")).toMatchObject({ ok: false, rule: "ssrf" });
  });
});
