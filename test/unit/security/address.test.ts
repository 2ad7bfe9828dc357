import { describe, expect, it } from "vitest";
import { blockedRangeOf, parseCidrs, parseHost, parseInetAton, refusalForAddress } from "../../../src/security/address.js";

describe("parseHost: every spelling of an address is canonicalised", () => {
  const loopback = [
    "127.0.0.1",
    "2130706433", // decimal
    "0177.0.0.1", // octal
    "0x7f.1", // hex + short
    "0x7F000001",
    "127.1", // short
    "127.0.1",
    "127.0.0.1.", // trailing dot
    "127.0.0.1..",
    "[::ffff:127.0.0.1]", // IPv4-mapped IPv6
    "[::ffff:7f00:1]",
    "::FFFF:7F00:1",
    "0x7f.0.0.0x1",
    "017700000001",
  ];
  it.each(loopback)("%s is 127.0.0.1", (spelling) => {
    expect(parseHost(spelling)).toMatchObject({ name: "127.0.0.1" });
    expect(parseHost(spelling).address).toBeDefined();
  });

  it("strips IPv6 zone ids, brackets and case", () => {
    expect(parseHost("[fe80::1%25eth0]").name).toBe("fe80::1");
    expect(parseHost("[FE80::1%eth0]").name).toBe("fe80::1");
    expect(parseHost("[::1]").name).toBe("::1");
  });

  it("keeps names as lowercase names without trailing dots", () => {
    expect(parseHost("Example.COM.")).toEqual({ name: "example.com" });
    expect(parseHost("1.2.3.4.nip.io").address).toBeUndefined();
    expect(parseHost("0x7g.1").address).toBeUndefined();
  });

  it("rejects out-of-range inet_aton forms", () => {
    expect(parseInetAton("256.0.0.1")).toBeUndefined();
    expect(parseInetAton("1.2.3.256")).toBeUndefined();
    expect(parseInetAton("1.16777216")).toBeUndefined();
    expect(parseInetAton("4294967296")).toBeUndefined();
    expect(parseInetAton("08.0.0.1")).toBeUndefined(); // 8 is not octal
    expect(parseInetAton("4294967295")).toEqual([255, 255, 255, 255]);
    expect(parseInetAton("10.1")).toEqual([10, 0, 0, 1]);
  });
});

describe("blockedRangeOf", () => {
  const cases: Array<[string, string | undefined]> = [
    ["127.0.0.1", "loopback"],
    ["10.1.2.3", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["192.168.1.1", "private"],
    ["169.254.169.254", "cloud metadata"],
    ["169.254.1.1", "link-local"],
    ["100.64.0.1", "carrier-grade NAT"],
    ["0.0.0.0", "unspecified"],
    ["224.0.0.1", "multicast"],
    ["255.255.255.255", "broadcast"],
    ["240.0.0.1", "reserved"],
    ["::1", "loopback"],
    ["::", "unspecified"],
    ["fd00:ec2::254", "cloud metadata"],
    ["fc00::1", "unique-local"],
    ["fe80::1", "link-local"],
    ["ff02::1", "multicast"],
    ["::ffff:10.0.0.1", "private"],
    ["64:ff9b::7f00:1", "NAT64"],
    // IPv4-translated (::ffff:0:0:0/96): loopback, metadata and even public ones are refused as a range.
    ["::ffff:0:7f00:1", "IPv4-translated"],
    ["::ffff:0:a9fe:a9fe", "IPv4-translated"],
    ["::ffff:0:808:808", "IPv4-translated"],
    ["[0:0:0:0:ffff:0:127.0.0.1]", "IPv4-translated"],
    ["2002:7f00:1::", "6to4"],
    ["1.1.1.1", undefined],
    ["172.32.0.1", undefined],
    ["2606:4700::1111", undefined],
  ];
  it.each(cases)("%s → %s", (addr, label) => {
    expect(blockedRangeOf(parseHost(addr).address!)).toBe(label);
  });

  it("allows blocked ranges only inside allowed CIDRs", () => {
    const allow = parseCidrs(["10.214.3.0/24"]);
    expect(refusalForAddress(parseHost("10.214.3.7").address!, allow)).toBeUndefined();
    expect(refusalForAddress(parseHost("10.214.4.7").address!, allow)).toBe("private");
    expect(refusalForAddress(parseHost("[::ffff:10.214.3.7]").address!, allow)).toBeUndefined();
    expect(refusalForAddress(parseHost("127.0.0.1").address!, allow)).toBe("loopback");
  });
});
