// The lifecycle verbs of the built `bottle` command on real Docker.
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { promisify } from "node:util";
import { afterAll, expect, it } from "vitest";
import { describeDocker } from "../helpers/docker.js";
import { CLI } from "../helpers/mcp.js";

const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-cli-life-"));
const manifest = nodePath.join(dir, "bottle.yaml");
writeFileSync(manifest, "version: 1\nagents:\n  cli:\n    image: node:24-bookworm-slim\n    network: { allow: [allowed.test] }\n");
const env = { ...process.env, BOTTLE_MANIFEST: manifest, BOTTLE_STATE_DIR: nodePath.join(dir, "state"), BOTTLE_SUBNET_POOL: "10.219.0.0/16" };
const slug = `cli-${process.pid.toString(16).slice(-4)}`;

const bottle = async (...args: string[]) => {
  try {
    const r = await promisify(execFile)(process.execPath, [CLI, ...args], { env, timeout: 300_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
};

describeDocker("bottle CLI lifecycle verbs", () => {
  afterAll(async () => {
    await bottle("stop", slug, "--purge");
  });

  it("start, list, exec, logs, stop, with progress on stderr and distinct exit codes", async () => {
    const started = await bottle("start", "cli", "--slug", slug);
    expect(started.code).toBe(0);
    expect(started.stdout).toContain(`bottle ${slug} is running (firewall, agent)`);
    expect(started.stderr).toContain("[up] creating and starting containers");
    expect(started.stderr).toContain("[health] every sidecar is ready");

    const list = await bottle("list", "--json");
    expect(JSON.parse(list.stdout).bottles).toContainEqual(expect.objectContaining({ slug, state: "running" }));
    expect((await bottle("list")).stdout).toMatch(new RegExp(`^${slug}\\s+running\\s+cli`, "m"));

    const ok = await bottle("exec", slug, "--", "sh", "-c", "echo from-agent; echo to-err >&2; exit 4");
    expect(ok).toMatchObject({ code: 4, stdout: "from-agent\n", stderr: "to-err\n" });
    const json = await bottle("exec", slug, "--json", "--", "echo", "x");
    expect(JSON.parse(json.stdout)).toMatchObject({ exitCode: 0, stdout: "x" });

    // Another state root's cleanup must not take our running bottle for an orphan.
    const foreign = await promisify(execFile)(process.execPath, [CLI, "cleanup", "--json"], { env: { ...env, BOTTLE_STATE_DIR: nodePath.join(dir, "other-root") } });
    expect(JSON.parse(foreign.stdout).removed).toEqual([]);
    expect(JSON.parse((await bottle("list", "--json")).stdout).bottles).toContainEqual(expect.objectContaining({ slug, state: "running" }));

    const logs = await bottle("logs", slug, "--service", "firewall", "--tail", "20");
    expect(logs.code).toBe(0);
    expect(logs.stdout).not.toContain("\x1b[");

    const stopped = await bottle("stop", slug, "--json");
    expect(JSON.parse(stopped.stdout)).toMatchObject({ slug, state: "stopped", wasState: "running" });
    expect((await bottle("cleanup")).stdout).toContain("nothing to clean up");
    expect(JSON.parse((await bottle("list", "--json")).stdout).bottles).toContainEqual(expect.objectContaining({ slug, state: "stopped" }));
  });

  it("exits 3 for an unknown bottle, 2 for bad input", async () => {
    const missing = await bottle("stop", "no-such-bottle");
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('no bottle "no-such-bottle"');
    expect((await bottle("logs", "../etc")).code).toBe(2);
    expect((await bottle("logs", slug, "--tail", "-5")).code).toBe(2);
    expect((await bottle("exec", slug, "echo", "no-dashes")).code).toBe(2);
    expect((await bottle("start")).code).toBe(2);
  });
});
