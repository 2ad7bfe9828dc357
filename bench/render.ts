// bottle_render of the full profile, in process: median per render over 1,000.
// Target: under 1 ms.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { performance } from "node:perf_hooks";
import { renderProfile } from "../src/bottles/render.js";
import { parseManifest } from "../src/manifest/index.js";
import { renderBottle } from "../src/render/index.js";
import { planOf, SHAPES } from "../test/fixtures/shapes.js";
import { median, percentile, printTable } from "./table.js";

const N = 1000;

function time(fn: () => unknown): number[] {
  for (let i = 0; i < 50; i++) fn(); // warm up the JIT
  const out: number[] = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    fn();
    out.push(performance.now() - t0);
  }
  return out;
}

export function benchRender(): void {
  const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-bench-render-"));
  const manifest = nodePath.join(dir, "bottle.yaml");
  writeFileSync(manifest, SHAPES.everything);
  const plan = planOf("everything");
  const env = { ...process.env, BOTTLE_STATE_DIR: nodePath.join(dir, "state") };
  const rows = [
    { what: "render only (plan -> compose + configs + YAML)", samples: time(() => renderBottle(plan)) },
    { what: "bottle_render core (read + validate + plan + render)", samples: time(() => renderProfile({ profile: "everything", manifest, slug: "bench-0001", env })) },
  ].map((r) => ({ what: r.what, n: N, "median ms": median(r.samples), "p99 ms": percentile(r.samples, 99), target: "< 1 ms median", ok: median(r.samples) < 1 ? "yes" : "NO" }));
  // For the record: what a render costs when the manifest was just edited.
  const parse = time(() => parseManifest(SHAPES.everything, manifest));
  rows.push({ what: "manifest parse alone, uncached (after an edit)", n: N, "median ms": median(parse), "p99 ms": percentile(parse, 99), target: "(info)", ok: "" });
  printTable("Render (full profile: pipelock + egress + git + supervise + runsc)", rows);
}
