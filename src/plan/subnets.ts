// Subnets for a bottle's networks, from our own pool (pure): Docker's default
// pools run out after a few dozen networks, and the firewall config needs the
// internal CIDR before anything starts.
import ipaddr from "ipaddr.js";
import { BottleError } from "../errors.js";

/**
 * The size of one bottle network. A /28 has 14 usable addresses; the busiest
 * network (internal) holds the bridge gateway, firewall, egress, git gate,
 * supervise and the agent: 6, so a /28 leaves room for another sidecar or
 * two. A /16 pool then holds 4,096 networks (2,048 bottles) instead of the
 * 256 a /24 each gave.
 */
export const SUBNET_PREFIX = 28;

/** An IPv4 range as [first, end) integers. */
interface Range {
  start: number;
  end: number;
}

const toInt = (a: ipaddr.IPv4): number => a.toByteArray().reduce((acc, b) => acc * 256 + b, 0);
const toDotted = (n: number): string => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");

function parsePool(pool: string, prefix: number): { start: number; bits: number } {
  try {
    const [addr, bits] = ipaddr.IPv4.parseCIDR(pool);
    const net = ipaddr.IPv4.networkAddressFromCIDR(pool);
    if (net.toString() !== addr.toString() || bits > prefix || bits < 8) throw new Error("range");
    return { start: toInt(net), bits };
  } catch {
    throw new BottleError("bad-input", `invalid subnet pool "${pool}": expected an IPv4 network CIDR between /8 and /${prefix}, like 10.213.0.0/16`);
  }
}

/** The plain form Docker prints (the engine lists every network's subnet on every start). */
const DOTTED_CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;

/**
 * IPv4 ranges of `cidrs`, sorted and merged so none overlap; IPv6 and
 * unparsable entries cannot collide with an IPv4 pool and are dropped.
 */
function rangesOf(cidrs: readonly string[]): Range[] {
  const out: Range[] = [];
  for (const c of cidrs) {
    const fast = DOTTED_CIDR.exec(c);
    if (fast?.slice(1, 5).every((b) => Number(b) < 256) && Number(fast[5]) <= 32) {
      const bits = Number(fast[5]);
      const size = 2 ** (32 - bits);
      const start = Math.floor(fast.slice(1, 5).reduce((acc, b) => acc * 256 + Number(b), 0) / size) * size;
      out.push({ start, end: start + size });
      continue;
    }
    try {
      const [addr, bits] = ipaddr.parseCIDR(c);
      if (addr.kind() !== "ipv4") continue;
      const start = toInt(ipaddr.IPv4.networkAddressFromCIDR(c));
      out.push({ start, end: start + 2 ** (32 - bits) });
    } catch {
      // not a CIDR: nothing to skip
    }
  }
  out.sort((a, b) => a.start - b.start);
  const merged: Range[] = [];
  for (const r of out) {
    const last = merged.at(-1);
    if (last && r.start <= last.end) last.end = Math.max(last.end, r.end);
    else merged.push({ ...r });
  }
  return merged;
}

/** Every /`prefix` subnet of `pool` (a /8 … /`prefix`), in order. Materialises the list: keep it for small pools and tests. */
export function subnetsOf(pool: string, prefix = SUBNET_PREFIX): string[] {
  const { start, bits } = parsePool(pool, prefix);
  const size = 2 ** (32 - prefix);
  const out: string[] = [];
  for (let i = 0; i < 2 ** (prefix - bits); i++) out.push(`${toDotted(start + i * size)}/${prefix}`);
  return out;
}

export function overlaps(a: string, b: string): boolean {
  try {
    const [na, la] = ipaddr.parseCIDR(a);
    const [nb, lb] = ipaddr.parseCIDR(b);
    if (na.kind() !== nb.kind()) return false;
    return na.match(nb, lb) || nb.match(na, la);
  } catch {
    return false;
  }
}

/**
 * Pick `n` free /`prefix` subnets from the pool, in order after skipping
 * `skip` free ones, never one that overlaps a subnet in `used` (pure). Walks
 * the pool once beside the sorted used ranges, jumping past each, so a /8
 * pool or thousands of used networks cost about what they skip.
 */
export function pickFreeSubnets(pool: string, used: readonly string[], n: number, skip = 0, prefix = SUBNET_PREFIX): string[] {
  const { start, bits } = parsePool(pool, prefix);
  const end = start + 2 ** (32 - bits);
  const size = 2 ** (32 - prefix);
  const taken = rangesOf(used);
  const picked: string[] = [];
  let free = 0;
  let i = 0; // the first used range that does not end at or before s
  for (let s = start; s < end && picked.length < n; ) {
    while (i < taken.length && taken[i]!.end <= s) i++;
    const hit = taken[i] && taken[i]!.start < s + size ? taken[i]! : undefined;
    if (hit) {
      // Jump to the first aligned subnet at or after the end of what is in use.
      s = Math.max(s + size, Math.ceil((hit.end - start) / size) * size + start);
      continue;
    }
    if (free++ >= skip) picked.push(`${toDotted(s)}/${prefix}`);
    s += size;
  }
  if (picked.length < n) {
    throw new BottleError(
      "conflict",
      `no free /${prefix} left in the subnet pool ${pool} (${used.length} subnets in use)`,
      "Stop bottles you no longer need (`bottle list`, `bottle stop`), run `bottle cleanup`, or set BOTTLE_SUBNET_POOL to a larger or different private range.",
    );
  }
  return picked;
}

/** The `n`th address of an IPv4 subnet (1 is the bridge gateway Docker picks); refuses one outside it or its broadcast address. */
export function hostAddress(subnet: string, n: number): string {
  const [net, bits] = ipaddr.IPv4.parseCIDR(subnet);
  const size = 2 ** (32 - bits);
  if (!Number.isInteger(n) || n < 1 || n >= size - 1) throw new BottleError("bad-input", `no host ${n} in ${subnet} (it has hosts 1-${size - 2})`);
  const start = Math.floor(toInt(net) / size) * size;
  return toDotted(start + n);
}
