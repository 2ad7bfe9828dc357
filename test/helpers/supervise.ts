// Bundle the in-agent MCP client once per test run.
import nodePath from "node:path";
import { build } from "esbuild";

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
