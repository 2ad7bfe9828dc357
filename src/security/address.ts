// Host and address classification for SSRF protection. An agent can spell an
// address many ways (decimal, octal, hex, short forms, IPv4-mapped IPv6, zone
// ids, trailing dots); everything is parsed to one canonical address before a
// decision, the way the OS resolver (inet_aton) would read it.
import ipaddr from "ipaddr.js";

export type Address = ipaddr.IPv4 | ipaddr.IPv6;

/**
 * Canonical form of a request host: lowercase, no brackets, no trailing dots,
 * no IPv6 zone id. Returns the name, or the address when the host is an IP
 * literal in any spelling.
 */
export function parseHost(raw: string): { name: string; address?: Address } {
  let host = raw.trim().toLowerCase();
  // Brackets belong around an IPv6 literal only: "[name]" stays as written
  // (no allowlist entry matches it, and it is never looked up as `name`).
  if (host.startsWith("[") && host.endsWith("]")) {
    if (!isIpv6Literal(host.slice(1, -1))) return { name: host };
    host = host.slice(1, -1);
  }
  host = host.replace(/\.+$/, "");
  const zone = host.search(/%/);
  if (zone >= 0 && host.includes(":")) host = host.slice(0, zone);
  const address = parseAddress(host);
  if (address) return { name: address.toString(), address };
  return { name: host };
}

/** What may stand between brackets in a host: an IPv6 address, with an optional zone id ("%25eth0" or "%eth0"). */
export function isIpv6Literal(inner: string): boolean {
  const zone = inner.indexOf("%");
  const addr = zone >= 0 ? inner.slice(0, zone) : inner;
  if (zone >= 0 && !/^%(?:25)?[\w.~-]+$/.test(inner.slice(zone))) return false;
  return addr.includes(":") && ipaddr.IPv6.isValid(addr);
}

/** An IP literal in any spelling the C library accepts, else undefined. */
export function parseAddress(host: string): Address | undefined {
  if (host.includes(":")) {
    if (!ipaddr.IPv6.isValid(host)) return undefined;
    const v6 = ipaddr.IPv6.parse(host);
    return v6.isIPv4MappedAddress() ? v6.toIPv4Address() : v6;
  }
  const v4 = parseInetAton(host);
  return v4 === undefined ? undefined : new ipaddr.IPv4(v4);
}

const INET_ATON_CHARS = /^[0-9a-fx.]+$/i;

/**
 * inet_aton(3): 1–4 dot-separated parts, each decimal, octal (leading 0) or
 * hex (0x); the last part fills the remaining bytes. `127.1`, `0x7f.1`,
 * `0177.0.0.1` and `2130706433` are all 127.0.0.1.
 */
export function parseInetAton(s: string): number[] | undefined {
  // Every part below is made of these characters only: a quick no for names.
  if (!INET_ATON_CHARS.test(s)) return undefined;
  const parts = s.split(".");
  if (parts.length < 1 || parts.length > 4) return undefined;
  const nums: number[] = [];
  for (const p of parts) {
    let n: number;
    if (/^0x[0-9a-f]*$/i.test(p)) n = p.length === 2 ? 0 : parseInt(p.slice(2), 16);
    else if (/^0[0-7]*$/.test(p)) n = p.length === 1 ? 0 : parseInt(p.slice(1), 8);
    else if (/^[1-9][0-9]*$/.test(p)) n = parseInt(p, 10);
    else return undefined;
    if (!Number.isSafeInteger(n)) return undefined;
    nums.push(n);
  }
  const last = nums.pop()!;
  if (nums.some((n) => n > 255)) return undefined;
  const lastBytes = 4 - nums.length;
  if (last >= 2 ** (8 * lastBytes)) return undefined;
  const out = [...nums];
  for (let i = lastBytes - 1; i >= 0; i--) out.push(Math.floor(last / 2 ** (8 * i)) % 256);
  return out;
}

interface BlockedRange {
  cidr: string;
  label: string;
}

// Everything that is not plainly public unicast. Cloud metadata addresses
// (169.254.169.254, fd00:ec2::254) fall inside link-local and unique-local.
const BLOCKED_V4: readonly BlockedRange[] = [
  { cidr: "0.0.0.0/8", label: "unspecified" },
  { cidr: "10.0.0.0/8", label: "private" },
  { cidr: "100.64.0.0/10", label: "carrier-grade NAT" },
  { cidr: "127.0.0.0/8", label: "loopback" },
  { cidr: "169.254.169.254/32", label: "cloud metadata" },
  { cidr: "169.254.0.0/16", label: "link-local" },
  { cidr: "172.16.0.0/12", label: "private" },
  { cidr: "192.0.0.0/24", label: "reserved" },
  { cidr: "192.0.2.0/24", label: "documentation" },
  { cidr: "192.88.99.0/24", label: "reserved" },
  { cidr: "192.168.0.0/16", label: "private" },
  { cidr: "198.18.0.0/15", label: "benchmarking" },
  { cidr: "198.51.100.0/24", label: "documentation" },
  { cidr: "203.0.113.0/24", label: "documentation" },
  { cidr: "224.0.0.0/4", label: "multicast" },
  { cidr: "255.255.255.255/32", label: "broadcast" },
  { cidr: "240.0.0.0/4", label: "reserved" },
];

const BLOCKED_V6: readonly BlockedRange[] = [
  { cidr: "::/128", label: "unspecified" },
  { cidr: "::1/128", label: "loopback" },
  // IPv4-compatible (deprecated) and NAT64/6to4/Teredo embed IPv4 addresses
  // whose reach we cannot judge from here: refuse them all.
  { cidr: "::/96", label: "IPv4-compatible" },
  // IPv4-translated (SIIT, RFC 2765): ::ffff:0:a.b.c.d. (IPv4-mapped
  // ::ffff:a.b.c.d is judged as the IPv4 address it maps.)
  { cidr: "::ffff:0:0:0/96", label: "IPv4-translated" },
  { cidr: "64:ff9b::/96", label: "NAT64" },
  { cidr: "64:ff9b:1::/48", label: "NAT64" },
  { cidr: "100::/64", label: "discard" },
  { cidr: "2001::/23", label: "IETF protocol assignment" },
  { cidr: "2001:db8::/32", label: "documentation" },
  { cidr: "2002::/16", label: "6to4" },
  { cidr: "fd00:ec2::254/128", label: "cloud metadata" },
  { cidr: "fc00::/7", label: "unique-local" },
  { cidr: "fe80::/10", label: "link-local" },
  { cidr: "fec0::/10", label: "site-local" },
  { cidr: "ff00::/8", label: "multicast" },
];

const parsedV4 = BLOCKED_V4.map((r) => ({ ...r, range: ipaddr.IPv4.parseCIDR(r.cidr) }));
const parsedV6 = BLOCKED_V6.map((r) => ({ ...r, range: ipaddr.IPv6.parseCIDR(r.cidr) }));

/** Why an address must not be dialed ("loopback", "private" …), or undefined when it is public. */
export function blockedRangeOf(addr: Address): string | undefined {
  if (addr.kind() === "ipv4") {
    const v4 = addr as ipaddr.IPv4;
    return parsedV4.find((r) => v4.match(r.range))?.label;
  }
  const v6 = addr as ipaddr.IPv6;
  if (v6.isIPv4MappedAddress()) return blockedRangeOf(v6.toIPv4Address());
  return parsedV6.find((r) => v6.match(r.range))?.label;
}

export type ParsedCidr = [Address, number];

export function parseCidrs(cidrs: readonly string[]): ParsedCidr[] {
  return cidrs.map((c) => ipaddr.parseCIDR(c));
}

export function inCidrs(addr: Address, cidrs: readonly ParsedCidr[]): boolean {
  return cidrs.some(([net, len]) => net.kind() === addr.kind() && addr.match(net, len));
}

/** The SSRF verdict for one address: undefined when it may be dialed. */
export function refusalForAddress(addr: Address, allowCidrs: readonly ParsedCidr[]): string | undefined {
  const label = blockedRangeOf(addr);
  if (!label || inCidrs(addr, allowCidrs)) return undefined;
  return label;
}
