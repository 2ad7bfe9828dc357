// SPEC §10 #2: an `--internal` network still routes to its bridge's gateway
// address, which is the Docker host itself, so every host port bound on
// 0.0.0.0 is reachable from the agent. Where we may (a local engine, root,
// iptables present), we reject input from the bottle's internal bridge on the
// host; container-to-container traffic on the bridge is forwarded, not
// input, and keeps working. `doctor` reports when this is not possible.
import { run } from "./run.js";

const COMMENT_PREFIX = "bot-bottle:";

export interface IsolationSupport {
  supported: boolean;
  reason: string;
}

/** The engine runs on this machine (not DOCKER_HOST=tcp://…/ssh://…). */
export function engineIsLocal(env: NodeJS.ProcessEnv = process.env): boolean {
  const h = env.DOCKER_HOST;
  return !h || h.startsWith("unix://") || h.startsWith("npipe://");
}

export async function hostIsolationSupport(env: NodeJS.ProcessEnv = process.env): Promise<IsolationSupport> {
  if (env.BOTTLE_HOST_ISOLATION === "off") return { supported: false, reason: "turned off by BOTTLE_HOST_ISOLATION=off" };
  if (!engineIsLocal(env)) return { supported: false, reason: `the Docker engine is remote (${env.DOCKER_HOST}); isolate its bridges on that host` };
  if (process.platform !== "linux") return { supported: false, reason: `not on Linux (${process.platform}); Docker Desktop's VM is not reachable from here` };
  if (process.getuid?.() !== 0) return { supported: false, reason: "not running as root, so host firewall rules cannot be added" };
  const r = await run("iptables", ["-S", "INPUT"], { reject: false, timeout: 10_000 }).catch(() => undefined);
  if (r?.exitCode !== 0) return { supported: false, reason: "iptables is not usable here" };
  return { supported: true, reason: "host input from bottle bridges is rejected with iptables" };
}

const rule = (bridge: string) => ["INPUT", "-i", bridge, "-m", "comment", "--comment", `${COMMENT_PREFIX}${bridge}`, "-j", "REJECT"];

/** Reject everything the bridge's containers send to the host itself. */
export async function isolateBridge(bridge: string): Promise<void> {
  await run("iptables", ["-I", ...rule(bridge)], { timeout: 10_000 });
}

/** Remove our rule(s) for this bridge; fine if there are none. */
export async function releaseBridge(bridge: string): Promise<void> {
  for (let i = 0; i < 10; i++) {
    const r = await run("iptables", ["-D", ...rule(bridge)], { reject: false, timeout: 10_000 }).catch(() => undefined);
    if (r?.exitCode !== 0) return;
  }
}

/** Bridges we hold rules for (to remove the rules of bridges that are gone). */
export async function isolatedBridges(): Promise<string[]> {
  const r = await run("iptables", ["-S", "INPUT"], { reject: false, timeout: 10_000 }).catch(() => undefined);
  if (r?.exitCode !== 0) return [];
  return [...r.stdout.matchAll(new RegExp(`--comment "?${COMMENT_PREFIX}([A-Za-z0-9_.-]+)"?`, "g"))].map((m) => m[1]!);
}
