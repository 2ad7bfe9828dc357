// Bundle the CLI and each sidecar into single files. Sidecar bundles are what
// the Dockerfiles copy: images never run `npm install` (no registry inside
// `docker build` on our CI machines, and a bundle keeps images small).
import { build } from "esbuild";
import { existsSync } from "node:fs";

const entries = [
  // The executable only checks the Node version, then loads the CLI bundle: a
  // separate file, so nothing in it is parsed on a Node too old to run it (and
  // the bundle stays free of esbuild's lazy-init wrappers, which cost cold start).
  { in: "src/cli/bin.ts", out: "dist/cli.js", banner: "#!/usr/bin/env node", external: ["./main.js"] },
  { in: "src/cli/main.ts", out: "dist/main.js" },
  { in: "src/sidecars/proxy/main.ts", out: "dist/sidecars/proxy.js" },
  { in: "src/sidecars/supervise/main.ts", out: "dist/sidecars/supervise.js" },
  { in: "src/sidecars/git-gate/main.ts", out: "dist/sidecars/git-gate.js" },
].filter((e) => existsSync(e.in));

await Promise.all(
  entries.map((e) =>
    build({
      entryPoints: [e.in],
      outfile: e.out,
      bundle: true,
      external: e.external ?? [],
      platform: "node",
      target: "node22",
      format: "esm",
      sourcemap: false,
      minify: false,
      legalComments: "none",
      logLevel: "warning",
      // Some CommonJS dependencies call require(); give ESM bundles one.
      banner: {
        js: `${e.banner ? `${e.banner}\n` : ""}import { createRequire as __bottleCreateRequire } from "node:module"; const require = __bottleCreateRequire(import.meta.url);`,
      },
    }),
  ),
);
console.error(`built ${entries.map((e) => e.out).join(", ")}`);
