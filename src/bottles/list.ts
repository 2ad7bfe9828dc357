// list (SPEC §6): state dirs joined with what Docker reports by label.
import { docker } from "../engine/run.js";
import { stateRoot } from "../state/root.js";
import { LABELS, stateRootId } from "../plan/index.js";
import { knownSlugs, metadataFile } from "../state/lookup.js";
import { readMetadata } from "../state/metadata.js";
import { pidAlive } from "../state/lock.js";

export type ListedState = "running" | "starting" | "stopped" | "failed" | "degraded" | "orphaned";

export interface ListedBottle {
  slug: string;
  profile: string;
  state: ListedState;
  recorded?: string;
  containers: Array<{ name: string; service: string; state: string; health?: string }>;
  networks: string[];
  detail?: string;
}

export async function listBottles(env?: NodeJS.ProcessEnv): Promise<ListedBottle[]> {
  const root = stateRoot(env);
  // Only this state root's objects: another root's bottles are not our orphans.
  const mine = `label=${LABELS.stateRoot}=${stateRootId(root)}`;
  const [ps, nets] = await Promise.all([
    docker(["ps", "-a", "--filter", mine, "--format", "{{json .}}"], { timeout: 30_000 }),
    docker(["network", "ls", "--filter", mine, "--format", `{{.Name}}\t{{.Label "${LABELS.slug}"}}`], { timeout: 30_000 }),
  ]);
  const containers = new Map<string, ListedBottle["containers"]>();
  for (const line of ps.stdout.split("\n").filter(Boolean)) {
    const c = JSON.parse(line) as { Names: string; Labels: string; State: string; Status: string };
    const labels = Object.fromEntries(c.Labels.split(",").map((kv) => kv.split("=") as [string, string]));
    const slug = labels[LABELS.slug];
    if (!slug) continue;
    const health = /\((healthy|unhealthy|health: starting)\)/.exec(c.Status)?.[1];
    const list = containers.get(slug) ?? [];
    list.push({ name: c.Names, service: labels["com.docker.compose.service"] ?? "?", state: c.State, ...(health ? { health } : {}) });
    containers.set(slug, list);
  }
  const networks = new Map<string, string[]>();
  for (const line of nets.stdout.split("\n").filter(Boolean)) {
    const [name, slug] = line.split("\t");
    if (slug && name) networks.set(slug, [...(networks.get(slug) ?? []), name]);
  }

  const slugs = new Set([...knownSlugs(root), ...containers.keys(), ...networks.keys()]);
  const out: ListedBottle[] = [];
  for (const slug of [...slugs].sort()) {
    const meta = readMetadata(metadataFile(root, slug));
    const cs = containers.get(slug) ?? [];
    const ns = networks.get(slug) ?? [];
    const base = { slug, profile: meta?.profile ?? "?", containers: cs, networks: ns, ...(meta ? { recorded: meta.state } : {}) };
    if (!meta) {
      out.push({ ...base, state: "orphaned", detail: "Docker objects with no state dir" });
      continue;
    }
    const up = cs.filter((c) => c.state === "running");
    let state: ListedState;
    let detail: string | undefined;
    switch (meta.state) {
      case "running":
        if (!cs.length) [state, detail] = ["orphaned", "recorded as running but no containers exist"];
        else if (up.length < meta.services.length || cs.some((c) => c.health === "unhealthy")) [state, detail] = ["degraded", `${up.length}/${meta.services.length} services running`];
        else state = "running";
        break;
      case "starting":
      case "stopping":
        if (meta.ownerPid && pidAlive(meta.ownerPid)) state = "starting";
        else [state, detail] = ["orphaned", `the process that was ${meta.state} it (pid ${meta.ownerPid ?? "?"}) is gone`];
        break;
      default:
        state = meta.state;
        if (cs.length || ns.length) [state, detail] = ["orphaned", `recorded as ${meta.state} but Docker objects remain`];
    }
    out.push({ ...base, state, ...(detail ? { detail } : meta.error ? { detail: meta.error.split("\n")[0] } : {}) });
  }
  return out;
}
