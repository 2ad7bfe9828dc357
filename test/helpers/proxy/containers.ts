// Small Docker helpers for the proxy integration suite: every object it makes
// carries the test label plus a run id, so cleanup finds exactly its own.
import { docker, type RunOptions } from "../../../src/engine/run.js";

export const TEST_LABEL = "dev.bot-bottle.test=proxy";

export interface RunSpec {
  name: string;
  image: string;
  /** First network at create time; the rest are connected before start. */
  networks: Array<{ name: string; aliases?: string[]; ip?: string }>;
  args?: string[];
  command?: string[];
  /** Values go through the docker subprocess env, never argv. */
  env?: Record<string, string>;
}

export class TestContainers {
  readonly created: string[] = [];
  constructor(readonly runId: string) {}

  get labels(): string[] {
    return ["--label", TEST_LABEL, "--label", `dev.bot-bottle.test-run=${this.runId}`];
  }

  async start(spec: RunSpec): Promise<string> {
    const [first, ...rest] = spec.networks;
    const netArgs = (n: NonNullable<typeof first>) => [...(n.aliases ?? []).flatMap((a) => ["--network-alias", a]), ...(n.ip ? ["--ip", n.ip] : [])];
    const envNames = Object.keys(spec.env ?? {}).flatMap((k) => ["-e", k]);
    this.created.push(spec.name);
    await docker(["create", "--name", spec.name, ...this.labels, "--network", first!.name, ...netArgs(first!), ...envNames, ...(spec.args ?? []), spec.image, ...(spec.command ?? [])], {
      timeout: 60_000,
      ...(spec.env ? { env: spec.env } : {}),
    });
    for (const n of rest) {
      await docker(["network", "connect", ...(n.aliases ?? []).flatMap((a) => ["--alias", a]), ...(n.ip ? ["--ip", n.ip] : []), n.name, spec.name], { timeout: 30_000 });
    }
    await docker(["start", spec.name], { timeout: 60_000 });
    return spec.name;
  }

  exec(name: string, argv: string[], o: RunOptions = {}) {
    return docker(["exec", ...(o.input !== undefined ? ["-i"] : []), name, ...argv], { timeout: 120_000, reject: false, ...o });
  }

  async logs(name: string): Promise<string> {
    const r = await docker(["logs", name], { timeout: 30_000, reject: false });
    return r.stdout + r.stderr;
  }

  async ipOn(name: string, network: string): Promise<string> {
    const r = await docker(["inspect", "--format", `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, name], { timeout: 30_000 });
    return r.stdout.trim();
  }

  /** Poll until `argv` exits 0 inside the container. */
  async waitFor(name: string, argv: string[], timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.exec(name, argv, { timeout: 10_000 });
      if (r.exitCode === 0) return;
      if (Date.now() > deadline) throw new Error(`${name} not ready: ${r.stderr || r.stdout}\n${await this.logs(name)}`);
      await new Promise((res) => setTimeout(res, 300));
    }
  }

  /** Remove every container of this run (by label, so even half-created ones go). */
  async removeAll(): Promise<void> {
    const ids = (await docker(["ps", "-aq", "--filter", `label=dev.bot-bottle.test-run=${this.runId}`], { timeout: 30_000, reject: false })).stdout.split("\n").filter(Boolean);
    if (ids.length) await docker(["rm", "-f", ...ids], { timeout: 60_000, reject: false });
  }
}
