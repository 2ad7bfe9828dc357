// Subnets for a bottle's networks, from our own pool (pure): Docker's default
// pools run out after a few dozen networks, and the firewall config needs the
// internal CIDR before anything starts.
import ipaddr from "ipaddr.js";
import { BottleError } from "../errors.js";

/** Every /24 of `pool` (a /16 … /24), in order. */
export function subnetsOf(pool: string, prefix = 24): string[] {
  let net: ipaddr.IPv4;
  let bits: number;
  try {
    const [addr, len] = ipaddr.IPv4.parseCIDR(pool);
    net = ipaddr.IPv4.networkAddressFromCIDR(pool);
    bits = len;
    if (net.toString() !== addr.toString() || bits > prefix || bits < 8) throw new Error("range");
  } catch {
    throw new BottleError("bad-input", `invalid subnet pool "${pool}": expected an IPv4 network CIDR between /8 and /${prefix}, like 10.213.0.0/16`);
  }
  const base = net.toByteArray().reduce((acc, b) => acc * 256 + b, 0);
  const count = 2 ** (prefix - bits);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const n = base + i * 2 ** (32 - prefix);
    out.push(`${[24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".")}/${prefix}`);
  }
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

/** Pick `n` free /24s from the pool, skipping those in `used` (pure). */
export function pickFreeSubnets(pool: string, used: string[], n: number, skip = 0): string[] {
  const free = subnetsOf(pool).filter((s) => !used.some((u) => overlaps(s, u)));
  const picked = free.slice(skip, skip + n);
  if (picked.length < n) {
    throw new BottleError(
      "conflict",
      `no free /24 left in the subnet pool ${pool} (${used.length} subnets in use)`,
      "Stop bottles you no longer need (`bottle list`, `bottle stop`), run `bottle cleanup`, or set BOTTLE_SUBNET_POOL to a larger or different private range.",
    );
  }
  return picked;
}
