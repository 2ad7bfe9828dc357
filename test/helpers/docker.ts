// Integration suites need a real Docker engine. Locally a missing engine
// skips them (and says so); in CI (CI=true) it fails loudly instead.
import { execFileSync } from "node:child_process";
import { describe } from "vitest";

function probe(): string | undefined {
  try {
    execFileSync("docker", ["info", "--format", "{{.ServerVersion}}"], { stdio: ["ignore", "pipe", "pipe"], timeout: 15_000 });
    execFileSync("docker", ["compose", "version"], { stdio: ["ignore", "pipe", "pipe"], timeout: 15_000 });
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message.split("\n")[0] : String(err);
  }
}

const problem = probe();
export const dockerAvailable = problem === undefined;

/** `describe` for suites that need Docker. */
export function describeDocker(name: string, fn: () => void): void {
  if (problem !== undefined) {
    if (process.env.CI) {
      describe(name, () => {
        throw new Error(`Docker is required in CI but unavailable: ${problem}`);
      });
      return;
    }
    process.stderr.write(`\n[bot-bottle tests] SKIPPING "${name}": Docker unavailable (${problem})\n`);
    describe.skip(name, fn);
    return;
  }
  describe(name, fn);
}
