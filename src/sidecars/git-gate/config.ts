// Load and validate the gate's config file.
import { readFileSync } from "node:fs";
import { gitGateConfigSchema, type GitGateConfig } from "../../contracts/git-gate.js";

export function loadGateConfig(file: string): GitGateConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new Error(`cannot read git-gate config ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const parsed = gitGateConfigSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`invalid git-gate config ${file}: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return parsed.data;
}

/** Bare repositories live here, one per upstream: /srv/git/<name>.git. */
export const REPO_ROOT = "/srv/git";
export const repoDir = (name: string) => `${REPO_ROOT}/${name}.git`;
