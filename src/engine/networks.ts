// Networks are created by us, not by compose, with explicit subnets from our
// own pool: Docker's default pools run out after a few dozen networks, and
// the firewall config needs the internal CIDR before anything starts.
import ipaddr from "ipaddr.js";
import { BottleError } from "../errors.js";
import type { NetworkPlan, Subnets } from "../plan/index.js";
import { docker } from "./run.js";

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

/** Subnets every existing Docker network uses. */
export async function usedSubnets(signal?: AbortSignal): Promise<string[]> {
  const ids = (await docker(["network", "ls", "-q"], { timeout: 30_000, ...(signal ? { signal } : {}) })).stdout.split("\n").filter(Boolean);
  if (!ids.length) return [];
  const out = await docker(["network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", ...ids], { timeout: 30_000, reject: false, ...(signal ? { signal } : {}) });
  return out.stdout.split(/\s+/).filter(Boolean);
}

/** Pick `n` free /24s from the pool, skipping those in `used` (pure). */
export function pickFreeSubnets(pool: string, used: string[], n: number, skip = 0): string[] {
  const free = subnetsOf(pool).filter((s) => !used.some((u) => overlaps(s, u)));
  const picked = free.slice(skip, skip + n);
  if (picked.length < n) {
    throw new BottleError("conflict", `no free /24 left in the subnet pool ${pool} (${used.length} subnets in use)`, "Stop bottles you no longer need (`bottle list`, `bottle stop`), run `bottle cleanup`, or set BOTTLE_SUBNET_POOL to a larger or different private range.");
  }
  return picked;
}

export async function createNetwork(net: NetworkPlan, signal?: AbortSignal): Promise<void> {
  const args = ["network", "create", "--driver", "bridge", "--subnet", net.subnet, "-o", `com.docker.network.bridge.name=${net.bridge}`];
  if (net.internal) args.push("--internal");
  for (const [k, v] of Object.entries(net.labels)) args.push("--label", `${k}=${v}`);
  args.push(net.name);
  await docker(args, { timeout: 30_000, ...(signal ? { signal } : {}) });
}

/** Remove networks in one call; ones already gone are fine. */
export async function removeNetwork(...names: string[]): Promise<void> {
  if (!names.length) return;
  const r = await docker(["network", "rm", ...names], { timeout: 30_000, reject: false });
  const real = r.stderr.split("\n").filter((l) => l.trim() && !/not found|No such network/i.test(l));
  if (r.exitCode !== 0 && real.length) throw new BottleError("docker", `could not remove network(s) ${names.join(", ")}: ${real.join("; ")}`);
}

/**
 * Create both networks on free subnets. Parallel starts can race for the same
 * subnet; Docker refuses an overlapping pool, so we retry with the next free.
 */
export async function createBottleNetworks(
  make: (subnets: Subnets) => { internal: NetworkPlan; egress: NetworkPlan },
  pool: string,
  signal?: AbortSignal,
): Promise<{ internal: NetworkPlan; egress: NetworkPlan }> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 12; attempt++) {
    const used = await usedSubnets(signal);
    const [internal, egress] = pickFreeSubnets(pool, used, 2, attempt % 3 === 0 ? 0 : Math.floor(Math.random() * 8));
    const nets = make({ internal: internal!, egress: egress! });
    try {
      await createNetwork(nets.internal, signal);
    } catch (err) {
      lastError = err;
      if (isOverlap(err)) continue;
      throw err;
    }
    try {
      await createNetwork(nets.egress, signal);
      return nets;
    } catch (err) {
      lastError = err;
      await removeNetwork(nets.internal.name);
      if (isOverlap(err)) continue;
      throw err;
    }
  }
  throw lastError instanceof Error ? lastError : new BottleError("docker", "could not allocate bottle networks");
}

function isOverlap(err: unknown): boolean {
  return err instanceof Error && /overlap|Pool overlaps|address already in use/i.test(err.message);
}
