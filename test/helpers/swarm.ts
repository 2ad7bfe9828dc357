// A real three-node Docker Swarm for integration tests, made of
// Docker-in-Docker node containers on a network this harness creates. The
// machine's own engine never joins a swarm (others' tests share it): every
// swarm object lives inside the node containers, and `stop()` removes the
// nodes, their /var/lib/docker volumes and the network.
//
// The nodes run without --privileged: this VM's bounding set lacks
// CAP_SYS_RESOURCE, and runc refuses a privileged container that asks for
// it. All other capabilities, no seccomp/AppArmor, unmasked /proc and every
// device do the same job (test/fixtures/swarm/node-start.sh remounts the
// cgroup hierarchies writable).
import { createHash } from "node:crypto";
import { promises as fs, readFileSync } from "node:fs";
import nodePath from "node:path";
import { execa } from "execa";
import { docker } from "../../src/engine/run.js";
import { usedSubnets } from "../../src/engine/networks.js";
import { overlaps } from "../../src/plan/subnets.js";

const FIXTURE = nodePath.resolve(import.meta.dirname, "../fixtures/swarm");
export const NODE_IMAGE = "bot-bottle-test/swarm-node:latest";
const HASH_LABEL = "dev.bot-bottle.test.source";
export const TEST_LABEL = "dev.bot-bottle.test.swarm";
const POOL_SECOND_OCTETS = { first: 240, prefix: "10.240" } as const;

export interface SwarmNode {
  /** Container name on this machine, also the node's hostname and its swarm node name. */
  name: string;
  address: string;
  /** DOCKER_HOST of the node's engine, reachable from this machine. */
  host: string;
  role: "manager" | "worker";
}

export interface TestSwarm {
  network: string;
  subnet: string;
  nodes: SwarmNode[];
  manager: SwarmNode;
  /** BOTTLE_SWARM_NODES for the swarm engine: name=host,... */
  nodesEnv: string;
  /** Seconds spent in each setup step. */
  timings: Record<string, number>;
  /** docker against one node's engine. */
  on(node: SwarmNode, args: string[], o?: { input?: string; timeout?: number; reject?: boolean }): ReturnType<typeof docker>;
  stop(): Promise<void>;
}

export interface SwarmOptions {
  /** Node count (first is the manager). */
  nodes?: number;
  /** Host dirs bind-mounted at the same path into the manager node (the state root, so sidecars pinned there read it). */
  managerDirs?: string[];
  /** Host dirs bind-mounted at the same path into every node: a shared filesystem (BOTTLE_SWARM_SHARED_STATE=1). */
  sharedDirs?: string[];
  /** Images copied from this machine's engine into every node. */
  images?: string[];
  /** Images copied only into the manager. */
  managerImages?: string[];
}

function nodeImageHash(): string {
  const h = createHash("sha256");
  for (const f of ["Dockerfile.node", "node-start.sh"]) h.update(f).update(readFileSync(nodePath.join(FIXTURE, f)));
  return h.digest("hex").slice(0, 16);
}

/** Build the node image once; later runs find it by the hash of what it was built from. */
export async function ensureNodeImage(): Promise<void> {
  const hash = nodeImageHash();
  const r = await docker(["image", "inspect", "--format", `{{index .Config.Labels "${HASH_LABEL}"}}`, NODE_IMAGE], { reject: false, timeout: 30_000 });
  if (r.exitCode === 0 && r.stdout.trim() === hash) return;
  await docker(["build", "--pull=false", "-q", "--label", `${HASH_LABEL}=${hash}`, "-t", NODE_IMAGE, "-f", nodePath.join(FIXTURE, "Dockerfile.node"), FIXTURE], { timeout: 900_000 });
}

async function freeSubnet(): Promise<string> {
  const used = await usedSubnets();
  for (let i = 1; i < 255; i++) {
    const candidate = `${POOL_SECOND_OCTETS.prefix}.${i}.0/24`;
    if (!used.some((u) => overlaps(u, candidate))) return candidate;
  }
  throw new Error(`no free /24 in ${POOL_SECOND_OCTETS.prefix}.0.0/16 for the swarm test network`);
}

/** `docker save <image> | docker -H <node> load`: images reach nodes without a registry. */
export async function copyImage(image: string, host: string): Promise<void> {
  // A shell pipe: the image streams from one engine to the other, never held in this process.
  const r = await execa("bash", ["-o", "pipefail", "-c", 'docker save "$1" | DOCKER_HOST="$2" docker load -q', "copy-image", image, host], { reject: false, stdin: "ignore", timeout: 300_000 });
  if (r.exitCode !== 0) throw new Error(`copying ${image} to ${host} failed: ${String(r.stderr).slice(-500)}`);
}

const since = (t0: number) => Math.round((performance.now() - t0) / 100) / 10;

export async function startSwarm(o: SwarmOptions = {}): Promise<TestSwarm> {
  const count = o.nodes ?? 3;
  const tag = `${process.pid.toString(16)}${Date.now().toString(36).slice(-3)}`;
  const network = `bbswarm-${tag}`;
  const timings: Record<string, number> = {};
  let t = performance.now();
  await ensureNodeImage();
  timings.image = since(t);

  const subnet = await freeSubnet();
  const prefix = subnet.split(".").slice(0, 3).join(".");
  const nodes: SwarmNode[] = Array.from({ length: count }, (_, i) => {
    const address = `${prefix}.${11 + i}`;
    return { name: `${network}-${i + 1}`, address, host: `tcp://${address}:2375`, role: i === 0 ? "manager" : "worker" };
  });
  const on = (node: SwarmNode, args: string[], x: { input?: string; timeout?: number; reject?: boolean } = {}) =>
    docker(args, { env: { DOCKER_HOST: node.host }, timeout: x.timeout ?? 60_000, ...(x.input !== undefined ? { input: x.input } : {}), ...(x.reject === false ? { reject: false } : {}) });

  const stop = async () => {
    const ids = (await docker(["ps", "-aq", "--filter", `label=${TEST_LABEL}=${tag}`], { reject: false })).stdout.split("\n").filter(Boolean);
    // -v: the nodes' anonymous /var/lib/docker volumes go with them.
    if (ids.length) await docker(["rm", "-f", "-v", ...ids], { reject: false, timeout: 120_000 });
    await docker(["network", "rm", network], { reject: false });
    // Each node's engine made its containers' cgroups under /<node name> of
    // the machine's (v1) hierarchies; the kernel keeps empty ones until removed.
    for (const n of nodes) await removeCgroups(n.name);
  };

  try {
    t = performance.now();
    await docker(["network", "create", "--driver", "bridge", "--subnet", subnet, "--label", `${TEST_LABEL}=${tag}`, network]);
    await Promise.all(
      nodes.map((n) =>
        docker([
          "run",
          "-d",
          "--name",
          n.name,
          "--hostname",
          n.name,
          "--label",
          `${TEST_LABEL}=${tag}`,
          "--network",
          network,
          "--ip",
          n.address,
          "--cap-add",
          "ALL",
          "--cap-drop",
          "SYS_RESOURCE",
          "--security-opt",
          "apparmor=unconfined",
          "--security-opt",
          "seccomp=unconfined",
          "--security-opt",
          "systempaths=unconfined",
          "--device-cgroup-rule",
          "a *:* rwm",
          ...[...(n.role === "manager" ? (o.managerDirs ?? []) : []), ...(o.sharedDirs ?? [])].flatMap((d) => ["-v", `${d}:${d}`]),
          NODE_IMAGE,
        ]),
      ),
    );
    await Promise.all(nodes.map((n) => waitEngine(n, on)));
    timings.nodes = since(t);

    t = performance.now();
    const manager = nodes[0]!;
    await on(manager, ["swarm", "init", "--advertise-addr", manager.address, "--default-addr-pool", "10.99.0.0/16"]);
    const token = (await on(manager, ["swarm", "join-token", "-q", "worker"])).stdout.trim();
    await Promise.all(nodes.slice(1).map((n) => on(n, ["swarm", "join", "--token", token, "--advertise-addr", n.address, `${manager.address}:2377`])));
    timings.swarm = since(t);

    t = performance.now();
    const copies: Promise<void>[] = [];
    for (const image of o.images ?? []) for (const n of nodes) copies.push(copyImage(image, n.host));
    for (const image of o.managerImages ?? []) copies.push(copyImage(image, manager.host));
    await Promise.all(copies);
    timings.images = since(t);
    return { network, subnet, nodes, manager, nodesEnv: nodes.map((n) => `${n.name}=${n.host}`).join(","), timings, on, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** rmdir /sys/fs/cgroup/<subsystem>/<name> and everything under it, deepest first (they are empty once the node is gone). */
async function removeCgroups(name: string): Promise<void> {
  const root = "/sys/fs/cgroup";
  const subsystems = await fs.readdir(root).catch(() => [] as string[]);
  const rmTree = async (dir: string): Promise<void> => {
    const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) await rmTree(nodePath.join(dir, e.name));
    await fs.rmdir(dir).catch(() => {});
  };
  for (const sub of subsystems) await rmTree(nodePath.join(root, sub, name));
}

async function waitEngine(n: SwarmNode, on: TestSwarm["on"]): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < 60_000) {
    const r = await on(n, ["version", "--format", "{{.Server.Version}}"], { reject: false, timeout: 5_000 }).catch(() => undefined);
    if (r?.exitCode === 0) return;
    await new Promise((res) => setTimeout(res, 200));
  }
  const logs = await docker(["logs", "--tail", "20", n.name], { reject: false });
  throw new Error(`the engine in swarm node ${n.name} did not start:\n${logs.stderr}${logs.stdout}`);
}
