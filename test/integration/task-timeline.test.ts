// bottle_logs' task timeline on real Docker: a task in the agent reaches an
// allowed host (a plain HTTP upstream container this test starts, on a
// network only the firewall joins) and a host outside the allowlist, and the
// timeline shows its output lines and the firewall's allow/deny decisions in
// the order they happened. The CLI's --json is the same result.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { bottleLogs, type TimelineEntry } from "../../src/bottles/logs.js";
import { startBottle } from "../../src/bottles/start.js";
import { stopBottle } from "../../src/bottles/stop.js";
import { execInBottle } from "../../src/bottles/exec.js";
import { runTask, taskStatus } from "../../src/bottles/tasks.js";
import { createNetwork, removeNetwork, usedSubnets } from "../../src/engine/networks.js";
import { docker } from "../../src/engine/run.js";
import { bridgeName } from "../../src/plan/index.js";
import { pickFreeSubnets } from "../../src/plan/subnets.js";
import { describeDocker } from "../helpers/docker.js";
import { CLI } from "../helpers/mcp.js";

const run = process.pid.toString(16).slice(-4);
const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-timeline-"));
const manifest = nodePath.join(dir, "bottle.yaml");
const env = { ...process.env, BOTTLE_STATE_DIR: nodePath.join(dir, "state"), BOTTLE_SUBNET_POOL: "10.241.0.0/16" };
const slug = `tl-${run}`;
const upstreamNet = `bb-tl-up-${run}`;
const upstream = `bb-tl-upstream-${run}`;
const IMAGE = "node:24-bookworm-slim";

describeDocker("a task's timeline: output and firewall decisions by time", () => {
  beforeAll(async () => {
    const [subnet] = pickFreeSubnets("10.242.0.0/16", await usedSubnets(), 1);
    await createNetwork({ name: upstreamNet, subnet: subnet!, internal: true, bridge: bridgeName(upstreamNet), labels: { "dev.bot-bottle.test": "timeline" } });
    const server = "require('http').createServer((q,s)=>s.end('hello from upstream\\n')).listen(80)";
    await docker(["run", "-d", "--init", "--name", upstream, "--network", upstreamNet, "--network-alias", "allowed.test", IMAGE, "node", "-e", server], { timeout: 60_000 });
    writeFileSync(manifest, `version: 1\nagents:\n  tl:\n    image: ${IMAGE}\n    network:\n      allow: [allowed.test]\n      allow_cidrs: [${subnet}]\n`);
    await startBottle({ profile: "tl", manifest, slug, env });
    // Only the firewall joins the upstream's network.
    await docker(["network", "connect", upstreamNet, `bottle-firewall-${slug}`], { timeout: 30_000 });
  }, 300_000);

  afterAll(async () => {
    await stopBottle(slug, { env, purge: true }).catch(() => {});
    await docker(["rm", "-f", upstream], { timeout: 60_000, reject: false });
    await removeNetwork(upstreamNet).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  it("shows the task's steps and the firewall's allow and deny decisions interleaved in order", async () => {
    // Node's fetch (NODE_USE_ENV_PROXY=1 in every bottle) through the firewall; the
    // pauses keep each step apart by more than the wrapper's look interval.
    const fetch = (url: string) => `node -e "fetch('${url}').then(r=>r.text()).then(t=>console.log('got', t.trim()),e=>console.log('refused', String(e.cause?.message??e)))"`;
    const script = [
      "echo step1 allowed",
      "sleep 0.6",
      fetch("http://allowed.test/"),
      "sleep 0.6",
      "echo step2 blocked",
      "sleep 0.6",
      fetch("http://blocked.test/"),
      "sleep 0.6",
      "echo step3 done",
    ].join("; ");
    const { taskId } = await runTask(slug, ["sh", "-c", script], { env });
    const done = await taskStatus(slug, { env, taskId, waitS: 60 });
    expect(done.tasks[0]).toMatchObject({ state: "exited" });
    expect(done.output!.text).toContain("got hello from upstream");
    expect(done.output!.text).toContain("refused");

    const r = await bottleLogs({ env, slug, taskId });
    expect(r).toMatchObject({ source: "live", task: { taskId, state: "exited" } });
    const tl = r.timeline!;
    const host = (e: TimelineEntry) => (e.source === "firewall" ? (JSON.parse(e.text) as { host?: string; decision?: string }) : undefined);
    const at = (pred: (e: TimelineEntry) => boolean) => tl.findIndex(pred);
    const step = (n: number) => at((e) => e.source === "task" && e.text.startsWith(`step${n}`));
    const allowed = tl.flatMap((e, i) => (host(e)?.host === "allowed.test" ? [{ i, decision: host(e)!.decision }] : []));
    const blocked = tl.flatMap((e, i) => (host(e)?.host === "blocked.test" ? [{ i, decision: host(e)!.decision }] : []));
    expect(allowed.map((d) => d.decision)).toContain("allowed");
    expect(blocked.map((d) => d.decision)).toEqual(["blocked"]);
    // step1 < every allowed.test decision < step2 < the blocked.test decision < step3
    expect(step(1)).toBeGreaterThanOrEqual(0);
    for (const d of allowed) expect(d.i).toBeGreaterThan(step(1));
    for (const d of allowed) expect(d.i).toBeLessThan(step(2));
    expect(blocked[0]!.i).toBeGreaterThan(step(2));
    expect(blocked[0]!.i).toBeLessThan(step(3));
    console.info(r.lines.join("\n"));

    // The CLI prints the same result as JSON.
    const cli = await promisify(execFile)(process.execPath, [CLI, "logs", slug, "--task", taskId, "--json"], { env, timeout: 30_000 });
    expect(JSON.parse(cli.stdout)).toEqual(await bottleLogs({ env, slug, taskId }));
  }, 120_000);

  it("counts what the agent writes straight into its task mount, and refuses new tasks over the limit", async () => {
    const before = (await taskStatus(slug, { env })).disk!;
    // Past the wrapper: the agent writes 3 MiB into the mount itself.
    const w = await execInBottle(slug, ["sh", "-c", "head -c 3145728 /dev/zero > /var/lib/bottle/tasks/junk && sync"], { env });
    expect(w.exitCode).toBe(0);
    const after = (await taskStatus(slug, { env })).disk!;
    expect(after.bytes - before.bytes).toBeGreaterThanOrEqual(3 * 1024 * 1024);
    const tight = { ...env, BOTTLE_TASK_DISK_LIMIT_MB: String(Math.floor(after.bytes / (1024 * 1024))) };
    expect((await taskStatus(slug, { env: tight })).disk!.over).toBe(true);
    await expect(runTask(slug, ["true"], { env: tight })).rejects.toThrow(/over its limit/);
    // Under the default limit it runs.
    const { taskId } = await runTask(slug, ["true"], { env });
    expect((await taskStatus(slug, { env, taskId, waitS: 30 })).tasks[0]!.state).toBe("exited");
  }, 60_000);
});
