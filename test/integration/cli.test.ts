// The built `bottle` command: output for humans and scripts, and exit codes.
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { SHAPES } from "../fixtures/shapes.js";
import { CLI } from "../helpers/mcp.js";

const run = async (args: string[], env: Record<string, string> = {}) => {
  try {
    const r = await promisify(execFile)(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 30_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
};

const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-cli-"));
const manifest = nodePath.join(dir, "bottle.yaml");
writeFileSync(manifest, SHAPES.egress);
const env = { BOTTLE_MANIFEST: manifest, BOTTLE_STATE_DIR: nodePath.join(dir, "state") };

describe("bottle CLI", () => {
  it("renders for humans", async () => {
    const r = await run(["render", "egress", "--slug", "cli-test"], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("bottle cli-test  (profile egress, project bottle-cli-test, firewall builtin)");
    expect(r.stdout).toContain("route      api.github.com/repos/acme/ sets Authorization from $GITHUB_TOKEN");
    expect(r.stdout).toContain("--- docker-compose.yml");
  });

  it("renders JSON for scripts, the same shape as the MCP tool", async () => {
    const r = await run(["render", "egress", "--slug", "cli-test", "--json", "--manifest", manifest]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.summary.slug).toBe("cli-test");
    expect(out.compose).toContain("name: bottle-cli-test");
  });

  // Node 20 is still the default on many machines: execa (and more) die there with an error that names nothing.
  const OLD_NODE = ["/usr/bin/node", "/usr/local/bin/node"].find((n) => existsSync(n) && Number(execFileSync(n, ["-p", "process.versions.node.split('.')[0]"], { encoding: "utf8" }).trim()) < 22);
  it.skipIf(!OLD_NODE)("on Node older than 22 says what to install, even for doctor", async () => {
    for (const verb of ["doctor", "list"]) {
      const r = await promisify(execFile)(OLD_NODE!, [CLI, verb], { env: { ...process.env, ...env }, timeout: 30_000 }).then(
        () => ({ code: 0, stderr: "" }),
        (e: { code: number; stderr: string }) => e,
      );
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^bottle needs Node\.js 22 or newer; this is Node\.js v\d+\.[\d.]+\. Install Node\.js 22 or 24/);
      expect(r.stderr).not.toContain("is not a function");
    }
  });

  it("exits 3 for an unknown profile and 2 for bad input", async () => {
    const unknown = await run(["render", "nope"], env);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain('unknown profile "nope"');
    expect(unknown.stderr).toContain("Known profiles: egress.");
    const badSlug = await run(["render", "egress", "--slug", "../x"], env);
    expect(badSlug.code).toBe(2);
    expect(badSlug.stderr).toContain("invalid slug");
    const badFlag = await run(["render", "egress", "--bogus"], env);
    expect(badFlag.code).toBe(2);
    const badVerb = await run(["frobnicate"], env);
    expect(badVerb.code).toBe(2);
    const missing = await run(["render", "egress"], { ...env, BOTTLE_MANIFEST: nodePath.join(dir, "none.yaml") });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("none.yaml: file not found");
  });

  it("renders the built-in demo manifest", async () => {
    const r = await run(["render", "demo", "--json", "--manifest", nodePath.resolve(import.meta.dirname, "../../examples/bottle.yaml")]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).summary.profile).toBe("demo");
  });

  it("doctor reports each check as ok or problem", async () => {
    const r = await run(["doctor", "--json"], env);
    const out = JSON.parse(r.stdout);
    expect(out.checks.map((c: { name: string }) => c.name)).toEqual(["node", "docker", "compose", "state", "host"]);
    expect(r.code).toBe(out.ok ? 0 : 1);
    const dead = await run(["doctor", "--json"], { ...env, DOCKER_HOST: `unix://${dir}/no-such.sock` });
    expect(dead.code).toBe(1);
    const docker = JSON.parse(dead.stdout).checks.find((c: { name: string }) => c.name === "docker");
    expect(docker.ok).toBe(false);
    expect(docker.fix).toContain("docker info");
  });
});
