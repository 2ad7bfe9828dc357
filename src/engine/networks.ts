// Networks on the Docker engine, by subnet and label (ComposeEngine uses these).
import { BottleError } from "../errors.js";
import type { NetworkPlan } from "../plan/index.js";
import { docker } from "./run.js";

/** Subnets every existing Docker network uses. */
export async function usedSubnets(signal?: AbortSignal): Promise<string[]> {
  const ids = (await docker(["network", "ls", "-q"], { timeout: 30_000, ...(signal ? { signal } : {}) })).stdout.split("\n").filter(Boolean);
  if (!ids.length) return [];
  const out = await docker(["network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", ...ids], { timeout: 30_000, reject: false, ...(signal ? { signal } : {}) });
  return out.stdout.split(/\s+/).filter(Boolean);
}

/** Not cancellable (see Engine.createNetwork): bounded by its timeout instead. */
export async function createNetwork(net: NetworkPlan): Promise<void> {
  const args = ["network", "create", "--driver", "bridge", "--subnet", net.subnet, "-o", `com.docker.network.bridge.name=${net.bridge}`];
  if (net.internal) args.push("--internal");
  for (const [k, v] of Object.entries(net.labels)) args.push("--label", `${k}=${v}`);
  args.push(net.name);
  await docker(args, { timeout: 30_000 });
}

/** Remove networks in one call; ones already gone are fine. */
export async function removeNetwork(...names: string[]): Promise<void> {
  if (!names.length) return;
  const r = await docker(["network", "rm", ...names], { timeout: 30_000, reject: false });
  const real = r.stderr.split("\n").filter((l) => l.trim() && !/not found|No such network/i.test(l));
  if (r.exitCode !== 0 && real.length) throw new BottleError("docker", `could not remove network(s) ${names.join(", ")}: ${real.join("; ")}`);
}
