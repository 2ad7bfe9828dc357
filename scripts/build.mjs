// Bundle the CLI and each sidecar into single files. Sidecar bundles are what
// the Dockerfiles copy: images never run `npm install` (no registry inside
// `docker build` on our CI machines, and a bundle keeps images small).
import { build } from "esbuild";
import { existsSync, readFileSync } from "node:fs";

const entries = [
  // The executable only checks the Node version, then loads the CLI bundle: a
  // separate file, so nothing in it is parsed on a Node too old to run it (and
  // the bundle stays free of esbuild's lazy-init wrappers, which cost cold start).
  { in: "src/cli/bin.ts", out: "dist/cli.js", banner: "#!/usr/bin/env node", external: ["./main.js"] },
  { in: "src/cli/main.ts", out: "dist/main.js" },
  // Sidecars are CommonJS: an ES module's `import ... from "node:http"` builds
  // node:http's ESM facade, whose getters load undici (about 65 ms of every
  // proxy start), and CJS skips the ESM loader altogether. `.cjs` because the
  // package is "type": "module".
  { in: "src/sidecars/proxy/main.ts", out: "dist/sidecars/proxy.cjs", sidecar: true },
  { in: "src/sidecars/supervise/main.ts", out: "dist/sidecars/supervise.cjs", sidecar: true },
  { in: "src/sidecars/git-gate/main.ts", out: "dist/sidecars/git-gate.cjs", sidecar: true },
].filter((e) => existsSync(e.in));

/**
 * zod's `z` namespace re-exports every locale (about 360 KB of translated
 * error messages, a fifth of a sidecar bundle) and esbuild cannot drop what
 * a namespace object re-exports. Nothing here selects a locale; zod's own
 * default is English, so only English is kept.
 */
const englishOnlyZod = {
  name: "english-only-zod",
  setup(b) {
    b.onLoad({ filter: /[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, () => ({ contents: 'export { default as en } from "./en.js";\n', loader: "js" }));
  },
};

await Promise.all(
  entries.map((e) =>
    build({
      entryPoints: [e.in],
      outfile: e.out,
      bundle: true,
      external: e.external ?? [],
      platform: "node",
      target: "node22",
      format: e.sidecar ? "cjs" : "esm",
      sourcemap: false,
      // Sidecars: no whitespace or comments (a smaller script to read and
      // compile at every start); names stay, so stack traces stay readable.
      minifyWhitespace: !!e.sidecar,
      minifySyntax: !!e.sidecar,
      minify: false,
      // V8 keeps a script's source in memory for the life of the process; one
      // non-ASCII character makes it two bytes per character (see assertAscii).
      charset: "ascii",
      legalComments: "none",
      logLevel: "warning",
      plugins: [englishOnlyZod],
      // Some CommonJS dependencies call require(); give ESM bundles one.
      banner: e.sidecar
        ? {}
        : { js: `${e.banner ? `${e.banner}\n` : ""}import { createRequire as __bottleCreateRequire } from "node:module"; const require = __bottleCreateRequire(import.meta.url);` },
    }),
  ),
);

/**
 * A sidecar's source stays in its heap as one string: Latin-1 when every
 * character is, UTF-16 (twice the size, 3.4 MB for the proxy) otherwise.
 * esbuild escapes strings, but not regular expression literals: fail the
 * build on whatever slips through, naming where.
 */
function assertAscii(file) {
  const text = readFileSync(file, "latin1");
  const at = text.search(/[^\x00-\x7f]/);
  if (at >= 0) {
    const line = text.slice(0, at).split("\n").length;
    throw new Error(`${file}:${line}: non-ASCII character in a sidecar bundle (${JSON.stringify(text.slice(Math.max(0, at - 40), at + 10))}); escape it in the source (\\uXXXX)`);
  }
}
for (const e of entries) if (e.sidecar) assertAscii(e.out);

console.error(`built ${entries.map((e) => e.out).join(", ")}`);
