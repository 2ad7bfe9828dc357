// examples/orchestrate end to end, over MCP stdio on real Docker: the
// example's own orchestrator (orchestrate.mjs, run as a user runs it: a real
// MCP client spawning this checkout's server) starts three bottles of the
// shipped `worker` profile, runs the scripted sub-agent in each, waits on the
// three tasks at once, reads their outputs and the git gates' decisions, and
// stops them all.
//
// The upstream is an SSH git host this test starts on a network of its own
// (test/helpers/git-upstream.ts); the shipped manifest is used with only
// what must differ on this machine changed: the upstream's URL, key, host
// key and address, and the build context's absolute path.
import { type ChildProcessByStdio, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { afterAll, beforeAll, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { docker } from "../../src/engine/run.js";
import { stopBottle } from "../../src/bottles/stop.js";
import { describeDocker } from "../helpers/docker.js";
import { buildTestImages, connectWhenCreated, lsRemote, SSH_HOST_IMAGE, startUpstream, type Upstream } from "../helpers/git-upstream.js";

const EXAMPLE = nodePath.resolve(import.meta.dirname, "../../examples/orchestrate");
const tag = process.pid.toString(16).slice(-4);
const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-orchestrate-"));
const env = { BOTTLE_STATE_DIR: nodePath.join(dir, "state"), BOTTLE_SUBNET_POOL: "10.232.0.0/16", BOTTLE_LOG_LEVEL: "warn" };
/** The upstream's own /24, carved from the same pool (the allocator skips it). */
const upstreamSubnet = `10.232.${200 + (process.pid % 50)}.0/24`;
const slugs = [1, 2, 3].map((i) => `orch-${tag}-${i}`);

/** What orchestrate.mjs --json prints per sub-agent (the parts checked here). */
interface AgentReport {
  slug: string;
  branch: string;
  taskId: string;
  state: string;
  exitCode?: number;
  output: string;
  result?: { branch?: string; commit?: string; file?: string };
  decisions: Array<{ ref: string; verdict: string; rule?: string; upstreamResult: string; new: string }>;
}

let up: Upstream;
let child: ChildProcessByStdio<null, Readable, Readable> | undefined;
let manifest: string;

/** Containers and networks still labelled with the slug. */
async function leftOf(slug: string): Promise<string> {
  const ps = await docker(["ps", "-a", "--filter", `label=dev.bot-bottle.slug=${slug}`, "-q"]);
  const nets = await docker(["network", "ls", "--filter", `label=dev.bot-bottle.slug=${slug}`, "-q"]);
  return (ps.stdout + nets.stdout).trim();
}

describeDocker("examples/orchestrate: three sub-agents push through their git gates, driven over MCP", () => {
  beforeAll(async () => {
    await buildTestImages();
    up = await startUpstream(`bb-orch-${tag}`, upstreamSubnet, dir);
    // The shipped profile, pointed at this machine's upstream.
    const shipped = parse(readFileSync(nodePath.join(EXAMPLE, "bottle.yaml"), "utf8"));
    const p = shipped.agents.worker;
    expect(p.git.upstreams).toHaveLength(1);
    expect(p.git.upstreams[0].policy.push_refs).toEqual(["refs/heads/agent/*"]);
    p.build.context = EXAMPLE;
    Object.assign(p.git.upstreams[0], { url: up.url, identity_file: up.clientKey.private, known_hosts: up.knownHostsLine, address: up.address });
    manifest = nodePath.join(dir, "bottle.yaml");
    writeFileSync(manifest, stringify(shipped));
  });

  afterAll(async () => {
    if (child && child.exitCode === null) child.kill();
    // Only if the test failed half way: the script stops its bottles itself.
    for (const slug of slugs) await stopBottle(slug, { env, purge: true }).catch(() => {});
    await up?.remove();
    if (!process.env.BOTTLE_TEST_KEEP_IMAGES) await docker(["rmi", SSH_HOST_IMAGE], { reject: false });
    rmSync(dir, { recursive: true, force: true });
  });

  it("starts three bottles, runs a sub-agent in each, waits on all, reads outputs and push decisions, stops all", { timeout: 600_000 }, async () => {
    // The example as a user runs it: its own MCP client spawns this checkout's server (dist/cli.js).
    child = spawn(process.execPath, [nodePath.join(EXAMPLE, "orchestrate.mjs"), "--manifest", manifest, "--prefix", `orch-${tag}`, "--json"], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const log: string[] = [];
    const connecting: Array<Promise<void>> = [];
    createInterface({ input: child.stderr }).on("line", (line) => {
      log.push(line);
      // Each gate reaches the upstream on the test's network (a real upstream is on the internet).
      const starting = /^\[([a-z0-9-]+)\] up: /.exec(line);
      if (starting) {
        const c = connectWhenCreated(`bottle-git-gate-${starting[1]}`, up.network);
        c.catch(() => {}); // awaited below, once the script is done
        connecting.push(c);
      }
    });
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    const t0 = Date.now();
    const code = await new Promise<number | null>((resolve) => child!.on("close", resolve));
    const ms = Date.now() - t0;
    await Promise.all(connecting);
    const trace = log.join("\n");
    expect(code, trace).toBe(0);
    const report = JSON.parse(stdout) as { agents: AgentReport[] };

    // Each sub-agent ran to exit 0 and said what it pushed.
    expect(report.agents.map((a) => a.slug)).toEqual(slugs);
    const upstream = lsRemote(up);
    for (const a of report.agents) {
      expect({ slug: a.slug, state: a.state, exitCode: a.exitCode }, a.output).toEqual({ slug: a.slug, state: "exited", exitCode: 0 });
      expect(a.output).toMatch(new RegExp(`^RESULT branch=agent/${a.slug} commit=[0-9a-f]{40} file=notes/agent-${a.slug}\\.md$`, "m"));
      expect(a.output).toMatch(new RegExp(`pushed to upstream "repo": refs/heads/agent/${a.slug}`));
      const commit = a.result!.commit!;
      expect(a.result).toEqual({ branch: `agent/${a.slug}`, commit, file: `notes/agent-${a.slug}.md` });

      // The upstream really has the branch at that commit, with the sub-agent's file.
      expect(upstream[`refs/heads/agent/${a.slug}`]).toBe(commit);
      // The gate's one decision for this bottle: the push, accepted and forwarded.
      expect(a.decisions.map((d) => ({ ref: d.ref, verdict: d.verdict, rule: d.rule, upstreamResult: d.upstreamResult, new: d.new }))).toEqual([
        { ref: `refs/heads/agent/${a.slug}`, verdict: "accepted", rule: undefined, upstreamResult: "ok", new: commit },
      ]);
    }
    expect(upstream["refs/heads/main"]).toBeDefined();
    expect(Object.keys(upstream).filter((r) => r.startsWith(`refs/heads/agent/orch-${tag}-`))).toHaveLength(3);
    const bare = nodePath.join(dir, "check.git");
    execFileSync("git", ["init", "-q", "--bare", bare]);
    execFileSync("git", ["-C", bare, "fetch", "-q", up.directUrl, `refs/heads/agent/orch-${tag}-*:refs/heads/agent/orch-${tag}-*`], { env: up.hostGitEnv, timeout: 30_000 });
    for (const a of report.agents) {
      const show = (what: string) => execFileSync("git", ["-C", bare, "show", "-s", what, a.result!.commit!]).toString().trim();
      expect(execFileSync("git", ["-C", bare, "show", `${a.result!.commit}:notes/agent-${a.slug}.md`]).toString()).toBe(`Notes from sub-agent ${a.slug}\n`);
      expect(show("--format=%an <%ae>|%s")).toBe(`bot-bottle sub-agent <sub-agent@bot-bottle.invalid>|Notes from sub-agent ${a.slug}`);
    }

    // It said so as it went: each task's output, read by cursor, then how it ended.
    for (const slug of slugs) {
      expect(log, trace).toContain(`[${slug}] task exited (exit 0)`);
      expect(trace).toMatch(new RegExp(`^\\[${slug}\\] \\| RESULT branch=agent/${slug} `, "m"));
    }

    // After stop nothing of the three bottles is left.
    for (const slug of slugs) {
      expect(log, trace).toContain(`[${slug}] stopped`);
      expect(await leftOf(slug), slug).toBe("");
    }
    console.info(`orchestrate.mjs: three bottles started, sub-agents run, pushes checked, stopped in ${ms} ms`);
  });
});
