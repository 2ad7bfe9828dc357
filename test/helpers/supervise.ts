// Bundle the in-agent MCP client once per test run; fake bottles for the inbox.
import { mkdirSync } from "node:fs";
import nodePath from "node:path";
import { build } from "esbuild";
import { writePlanInput, type PlanInput } from "../../src/bottles/plan-input.js";
import { ensureQueue } from "../../src/contracts/queue.js";
import { projectName } from "../../src/plan/index.js";
import { layoutOf } from "../../src/state/layout.js";
import { writeMetadata } from "../../src/state/metadata.js";

let bundle: Promise<string> | undefined;

export function agentClientBundle(): Promise<string> {
  bundle ??= build({
    entryPoints: [nodePath.resolve(import.meta.dirname, "../fixtures/supervise/agent-client.ts")],
    bundle: true,
    platform: "node",
    target: "node22",
    format: "esm",
    write: false,
    logLevel: "silent",
    banner: { js: 'import { createRequire as __cr } from "node:module"; const require = __cr(import.meta.url);' },
  }).then((r) => r.outputFiles[0]!.text);
  return bundle;
}

/**
 * A bottle as the state root knows it (metadata, the plan input it started
 * from, queue), with no containers: enough for the inbox and for decisions
 * that stop before touching the engine.
 */
export async function fakeBottle(root: string, slug: string, o: { state?: "running" | "stopped"; input?: PlanInput } = {}): Promise<string> {
  const layout = layoutOf(root, slug);
  mkdirSync(layout.stateDir, { recursive: true, mode: 0o700 });
  const now = new Date().toISOString();
  await writeMetadata(layout, {
    slug,
    profile: "p",
    project: projectName(slug),
    composeFile: layout.composeFile,
    manifest: "/m/bottle.yaml",
    networks: [],
    services: [],
    firewall: "builtin",
    packageVersion: "0",
    createdAt: now,
    updatedAt: now,
    state: o.state ?? "stopped",
    cloneUrls: [],
  });
  if (o.input) await writePlanInput(layout, { ...o.input, slug, stateRoot: root });
  await ensureQueue(layout.queueDir);
  return layout.queueDir;
}
