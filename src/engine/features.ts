// What the Docker engine behind the CLI supports, asked once per process.
import type { EngineFeatures } from "../plan/index.js";
import { docker } from "./run.js";

let cached: Promise<EngineFeatures> | undefined;

export function engineFeatures(): Promise<EngineFeatures> {
  cached ??= docker(["version", "--format", "{{.Server.APIVersion}}"], { timeout: 15_000 }).then(
    (r) => {
      const [major, minor] = r.stdout.trim().split(".").map(Number);
      return { healthStartInterval: (major ?? 0) > 1 || ((major ?? 0) === 1 && (minor ?? 0) >= 44) };
    },
    (err: unknown) => {
      cached = undefined; // don't cache "unreachable"
      throw err;
    },
  );
  return cached;
}
