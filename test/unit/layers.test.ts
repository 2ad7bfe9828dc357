// The tree reads as the data flow (SPEC §3): which top-level folder of src/
// may import which. Every relative import (type-only ones too) is mapped to
// its folder; an edge outside the table, or any cycle between folders, fails.
// The sidecar rule is also a lint rule (biome.jsonc); this test holds the rest.
import { readdirSync, readFileSync } from "node:fs";
import nodePath from "node:path";
import { describe, expect, it } from "vitest";

const SRC = nodePath.resolve(import.meta.dirname, "../../src");

/** Root files every host folder may use (they import nothing from src). */
const ROOT_FILES = new Set(["errors", "log", "package", "node-version"]);

const ALLOWED: Record<string, string[]> = {
  contracts: [],
  security: ["contracts"],
  manifest: ["contracts"],
  state: ["contracts"],
  plan: ["manifest", "contracts", "security", "state"],
  render: ["plan", "contracts", "state"],
  engine: ["plan", "contracts"],
  bottles: ["engine", "render", "plan", "state", "manifest", "security", "contracts"],
  demo: ["bottles", "engine", "plan", "state", "security", "manifest"],
  mcp: ["bottles", "contracts"],
  cli: ["bottles", "mcp", "demo", "contracts"],
  "sidecars/kit": ["contracts", "security"],
  "sidecars/proxy": ["contracts", "security", "sidecars/kit"],
  "sidecars/git-gate": ["contracts", "security", "sidecars/kit"],
  "sidecars/supervise": ["contracts", "security", "sidecars/kit"],
};

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? files(nodePath.join(dir, d.name)) : d.name.endsWith(".ts") ? [nodePath.join(dir, d.name)] : []));
}

/** "sidecars/proxy" for sidecars, else the top folder; the root file's name for root files. */
function folderOf(file: string): string {
  const parts = nodePath.relative(SRC, file).split(nodePath.sep);
  if (parts.length === 1) return `:${parts[0]!.replace(/\.ts$/, "")}`;
  return parts[0] === "sidecars" ? `sidecars/${parts[1]}` : parts[0]!;
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?\sfrom\s*["'](\.{1,2}\/[^"']+)["']|import\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g;

function edges(): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  for (const file of files(SRC)) {
    const from = folderOf(file);
    for (const m of readFileSync(file, "utf8").matchAll(IMPORT)) {
      const target = nodePath.resolve(nodePath.dirname(file), m[1] ?? m[2]!).replace(/\.js$/, ".ts");
      if (!target.startsWith(SRC + nodePath.sep)) continue; // package.json
      const to = folderOf(target);
      if (to === from) continue;
      const seen = out.get(from) ?? new Map<string, string>();
      if (!seen.has(to)) seen.set(to, nodePath.relative(SRC, file));
      out.set(from, seen);
    }
  }
  return out;
}

describe("folder layers", () => {
  const graph = edges();

  it("every folder imports only what the table allows", () => {
    const bad: string[] = [];
    for (const [from, tos] of graph) {
      for (const [to, where] of tos) {
        // A root file imports nothing from src.
        if (from.startsWith(":")) {
          bad.push(`${from} -> ${to} (${where})`);
          continue;
        }
        if (to.startsWith(":") && ROOT_FILES.has(to.slice(1)) && !from.startsWith("sidecars/")) continue;
        if (!(ALLOWED[from] ?? []).includes(to)) bad.push(`${from} -> ${to} (${where})`);
      }
    }
    expect(bad).toEqual([]);
  });

  it("has no cycle between folders", () => {
    const cycles: string[] = [];
    const visit = (node: string, path: string[]) => {
      for (const next of graph.get(node)?.keys() ?? []) {
        if (next === path[0]) cycles.push([...path, next].join(" -> "));
        else if (!path.includes(next) && next > path[0]!) visit(next, [...path, next]);
      }
    };
    for (const start of graph.keys()) visit(start, [start]);
    expect(cycles).toEqual([]);
  });

  it("plan/ and render/ are pure: no file system, processes, clock or randomness", () => {
    const impure = /from "node:(?:fs|fs\/promises|os|child_process|net|http)"|\bprocess\.|Math\.random|Date\.now|new Date\(/;
    const hits = files(SRC)
      .filter((f) => ["plan", "render"].includes(nodePath.relative(SRC, f).split(nodePath.sep)[0]!))
      .filter((f) => impure.test(readFileSync(f, "utf8")))
      .map((f) => nodePath.relative(SRC, f));
    expect(hits).toEqual([]);
  });

  it("joins state paths only in state/layout.ts", () => {
    const names = ["metadata.json", "docker-compose.yml", "compose.log", "grants.json", "plan-input.json", "exec.jsonl", ".locks"];
    const hits = files(SRC)
      .filter((f) => !f.endsWith(nodePath.join("state", "layout.ts")))
      .flatMap((f) => names.filter((n) => readFileSync(f, "utf8").includes(`"${n}"`)).map((n) => `${nodePath.relative(SRC, f)}: ${n}`));
    expect(hits).toEqual([]);
  });
});
