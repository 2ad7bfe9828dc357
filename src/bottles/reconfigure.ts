// Approving or withdrawing a grant: re-plan from the bottle's plan input and
// its live grants, render every sidecar config again (the one renderer),
// write the files that changed (temp + rename), SIGHUP their sidecars and
// wait until the proxies say they reloaded. Then the agent's view.
import { eventField, LOG_EVENTS } from "../contracts/log-line.js";
import { BottleError } from "../errors.js";
import type { Engine, ProjectRef } from "../engine/index.js";
import { containerName, resolvePlan } from "../plan/index.js";
import { renderAgentView } from "../render/agent-view.js";
import { renderBottle, type RenderedFile } from "../render/index.js";
import { writeChanged, writeFileAtomic } from "../state/atomic.js";
import { liveGrants, type Grant } from "../state/grants.js";
import type { BottleLayout } from "../state/layout.js";
import { readReady, waitReloaded } from "./readiness.js";
import { withEngine, type Ctx } from "./context.js";
import { readMetadata } from "../state/metadata.js";
import { readPlanInput } from "./plan-input.js";

export async function reconfigure(ctx: Ctx, b: { layout: BottleLayout; project: ProjectRef }, grants: readonly Grant[]): Promise<RenderedFile["sidecar"][]> {
  const now = ctx.now();
  const plan = resolvePlan({ ...(await readPlanInput(b.layout)), grants: liveGrants(grants, now) });
  // The compose file is not rewritten: grants change sidecar configs only.
  const changed = await writeChanged(renderBottle(plan).files, 0o600);
  // Our proxies confirm a reload in their log; pipelock and the git gate (which rereads per push) are only signalled.
  const confirms = (f: RenderedFile) => f.sidecar === "egress" || (f.sidecar === "firewall" && plan.firewall.engine === "builtin");
  // Signalled through the engine that runs this bottle (compose or swarm, as its metadata says).
  const engine = withEngine(ctx, readMetadata(b.layout)?.engine).engine;
  await Promise.all(changed.map((f) => reload(engine, b.project, b.layout, f.sidecar, confirms(f))));
  for (const f of renderAgentView(plan, now.toISOString())) await writeFileAtomic(f.path, f.content, 0o644);
  return changed.map((f) => f.sidecar);
}

export async function reload(engine: Engine, p: ProjectRef, layout: BottleLayout, service: string, confirm: boolean): Promise<void> {
  const container = containerName(service, p.slug);
  // Our proxies count reloads in their ready file: a stat-and-read, not a log read through the engine.
  const ready = confirm ? await readReady(layout, service) : undefined;
  if (ready?.reloads !== undefined) {
    await engine.signal(p, service, "HUP");
    const outcome = await waitReloaded(layout, service, ready);
    if (outcome === "refused") throw new BottleError("internal", `${container} refused the new config; the grant was not applied`);
    if (outcome === "applied") return;
    throw new BottleError("internal", `${container} did not confirm the reload within 2.5 s`);
  }
  // A bottle started before ready files counted reloads: read the proxy's log.
  // Count config_reloaded / config_reload_refused in a window that starts
  // before the signal, so an earlier reload (or clock skew with a remote
  // engine) cannot be mistaken for this one.
  const since = new Date(Date.now() - 5000).toISOString();
  const count = async () => {
    const out = ((await engine.logs(p, { service, since })) ?? []).join("\n");
    return { ok: out.split(eventField(LOG_EVENTS.configReloaded)).length - 1, refused: out.split(eventField(LOG_EVENTS.configReloadRefused)).length - 1 };
  };
  const before = confirm ? await count() : { ok: 0, refused: 0 };
  await engine.signal(p, service, "HUP");
  if (!confirm) return;
  for (let i = 0; i < 50; i++) {
    const now = await count();
    if (now.refused > before.refused) throw new BottleError("internal", `${container} refused the new config; the grant was not applied`);
    if (now.ok > before.ok) return;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new BottleError("internal", `${container} did not confirm the reload within 2.5 s`);
}
