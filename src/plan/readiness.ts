// How the lifecycle learns that each sidecar serves, without Docker
// healthchecks: a healthcheck is an exec in the container at a fixed
// interval for the bottle's whole life, which at dozens of bottles becomes
// the machine's main load. Our own sidecars write a ready file into a dir
// only they mount (sidecars/kit/ready.ts); an image we do not build
// (pipelock) is probed with its own health command, during the start only.
// The agent needs no probe: its PID 1 is our `sleep infinity` under init, so
// it runs nothing until someone execs into it, and start returns only once
// every sidecar is ready.
import type { Plan } from "./plan.js";

export type ReadyProbe = { service: string; kind: "file" } | { service: string; kind: "exec"; argv: string[] };

export function readyProbes(plan: Plan): ReadyProbe[] {
  const probes: ReadyProbe[] = [];
  const fw = plan.firewall;
  if (fw.engine === "builtin") probes.push({ service: fw.service, kind: "file" });
  else probes.push({ service: fw.service, kind: "exec", argv: ["/pipelock", "healthcheck", "--addr", `127.0.0.1:${fw.port}`] });
  for (const s of [plan.egress, plan.gitGate, plan.supervise]) if (s) probes.push({ service: s.service, kind: "file" });
  return probes;
}

/** Services that write a ready file (each gets its own ready dir mounted). */
export const fileReadyServices = (plan: Plan): string[] => readyProbes(plan).flatMap((p) => (p.kind === "file" ? [p.service] : []));
