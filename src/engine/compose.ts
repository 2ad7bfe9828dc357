// The compose CLI behind a small interface, one project at a time.
import { docker, type RunOptions, type RunResult } from "./run.js";

export interface ComposeProject {
  project: string;
  file: string;
}

export function compose(p: ComposeProject, args: string[], o: RunOptions = {}): Promise<RunResult> {
  return docker(["compose", "-p", p.project, "-f", p.file, ...args], o);
}

export const composeConfig = (p: ComposeProject, o: RunOptions = {}) => compose(p, ["config", "--quiet"], o);
/** `up -d --wait`: returns once every service with a healthcheck is healthy. */
export const composeUp = (p: ComposeProject, o: RunOptions = {}) => compose(p, ["up", "-d", "--wait", "--no-build", "--pull", "never"], { timeout: 300_000, ...o });
export const composeDown = (p: ComposeProject, o: RunOptions = {}) => compose(p, ["down", "--remove-orphans", "--timeout", "5"], { timeout: 120_000, ...o });
