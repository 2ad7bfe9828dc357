// A bottle's two networks on free subnets of our pool. Networks are created
// by us, not by compose: Docker's default pools run out after a few dozen
// networks, and the firewall config needs the internal CIDR before anything
// starts. Parallel starts can race for the same subnet; the engine refuses an
// overlapping one, so we retry with the next free.
import { BottleError } from "../errors.js";
import { SubnetTakenError, type Engine } from "../engine/index.js";
import { pickFreeSubnets, type NetworkPlan, type Subnets } from "../plan/index.js";

/**
 * Two free subnets, `skip` free ones in (so racing starts spread out); when
 * the pool has fewer left than that, the first two, so a nearly full pool
 * still fills up.
 */
function pickSpread(pool: string, used: readonly string[], skip: number): string[] {
  try {
    return pickFreeSubnets(pool, used, 2, skip);
  } catch (err) {
    if (skip === 0 || !(err instanceof BottleError) || err.code !== "conflict") throw err;
    return pickFreeSubnets(pool, used, 2);
  }
}

export async function allocateNetworks(
  engine: Engine,
  make: (subnets: Subnets) => { internal: NetworkPlan; egress: NetworkPlan },
  pool: string,
  signal?: AbortSignal,
): Promise<{ internal: NetworkPlan; egress: NetworkPlan }> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 12; attempt++) {
    const used = await engine.usedSubnets(signal);
    const [internal, egress] = pickSpread(pool, used, attempt % 3 === 0 ? 0 : Math.floor(Math.random() * 8));
    const nets = make({ internal: internal!, egress: egress! });
    // Both at once (each is a round trip to the engine); if either fails,
    // the other is removed again before a retry or the error.
    // Creates are not interrupted (the engine would finish them after we gave
    // up on them); a cancellation is honoured between them, not during.
    signal?.throwIfAborted();
    const [a, b] = await Promise.allSettled([engine.createNetwork(nets.internal), engine.createNetwork(nets.egress)]);
    if (a.status === "fulfilled" && b.status === "fulfilled" && !signal?.aborted) return nets;
    const made = [a.status === "fulfilled" ? nets.internal.name : undefined, b.status === "fulfilled" ? nets.egress.name : undefined].filter((n): n is string => n !== undefined);
    if (made.length) await engine.removeNetworks(made);
    signal?.throwIfAborted();
    const err = (a.status === "rejected" ? a.reason : (b as PromiseRejectedResult).reason) as unknown;
    lastError = err;
    if (err instanceof SubnetTakenError) continue;
    throw err;
  }
  throw lastError instanceof Error ? lastError : new BottleError("docker", "could not allocate bottle networks");
}
