// Bundle the in-agent MCP client once per test run; fake bottles for the inbox.
import { mkdirSync, writeFileSync } from "node:fs";
import nodePath from "node:path";
import { build } from "esbuild";
import { writeBase, type BaseConfigs } from "../../src/state/grants.js";
import { ensureQueue } from "../../src/contracts/queue.js";

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
 * A bottle as the state root knows it (metadata, base configs, queue), with
 * no containers: enough for the inbox and for decisions that stop before
 * touching Docker.
 */
export async function fakeBottle(root: string, slug: string, o: { state?: "running" | "stopped"; base?: BaseConfigs } = {}): Promise<string> {
  const dir = nodePath.join(root, slug);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const now = new Date().toISOString();
  writeFileSync(
    nodePath.join(dir, "metadata.json"),
    JSON.stringify({ slug, profile: "p", project: `bottle-${slug}`, composeFile: nodePath.join(dir, "docker-compose.yml"), manifest: "/m/bottle.yaml", networks: [], services: [], firewall: "builtin", packageVersion: "0", createdAt: now, updatedAt: now, state: o.state ?? "stopped" }),
  );
  if (o.base) await writeBase(dir, o.base);
  const queue = nodePath.join(dir, "queue");
  await ensureQueue(queue);
  return queue;
}
