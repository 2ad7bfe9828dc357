// Git gate benchmark (issue 5): push a 1,000-commit branch through the gate
// vs directly to the same upstream over SSH, interleaved in the same run.
// Both pushes start on this machine with the same git client: "gate" pushes
// git:// to the gate (which checks policy, scans every new object and pushes
// to the upstream over SSH), "direct" pushes over SSH to the upstream. Each
// run pushes a branch of fresh commits so neither side finds objects already
// there. Target: gate / direct <= 1.5. The gate's decision log says where its
// time goes (the checks, which run side by side, and the upstream push).
// Traffic stays on this machine: our own containers and networks only.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { performance } from "node:perf_hooks";
import { docker } from "../src/engine/run.js";
import { readGitDecisions } from "../src/bottles/git-log.js";
import { startBottle } from "../src/bottles/start.js";
import { stopBottle } from "../src/bottles/stop.js";
import { buildTestImages, connectWhenCreated, GIT_AGENT_IMAGE, SSH_HOST_IMAGE, startUpstream, type Upstream } from "../test/helpers/git-upstream.js";
import { median, printTable } from "./table.js";

const COMMITS = Number(process.env.BENCH_GIT_COMMITS ?? 1000);
const RUNS = Number(process.env.BENCH_GIT_RUNS ?? 5);
const POOL = "10.219.0.0/16";
const tag = (process.pid % 0xffff).toString(16).padStart(4, "0");

/** A fast-import stream: `n` commits on `branch` from `parent`, each changing one of 50 files. */
function fastImport(branch: string, parent: string, n: number, seed: string): string {
  const out: string[] = [];
  const data = (s: string) => `data ${Buffer.byteLength(s)}\n${s}`;
  for (let i = 1; i <= n; i++) {
    const lines = Array.from({ length: 20 }, (_, j) => `${seed} commit ${i} line ${j}: ${"lorem ipsum dolor sit amet ".repeat(2)}`).join("\n");
    out.push(`commit refs/heads/${branch}`, `mark :${i}`, `committer Bench <bench@bot-bottle.invalid> ${1_700_000_000 + i} +0000`, data(`${seed} change ${i}`));
    out.push(i === 1 ? `from ${parent}` : `from :${i - 1}`);
    out.push(`M 100644 inline src/file-${i % 50}.txt`, data(`${lines}\n`));
  }
  return `${out.join("\n")}\n`;
}

const git = (args: string[], cwd: string, env?: NodeJS.ProcessEnv) => execFileSync("git", args, { cwd, env, stdio: ["pipe", "pipe", "pipe"], maxBuffer: 64 * 1024 * 1024 }).toString();

export async function benchGitGate(): Promise<void> {
  const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-bench-git-"));
  const env = { ...(process.env as Record<string, string>), BOTTLE_STATE_DIR: nodePath.join(dir, "state"), BOTTLE_SUBNET_POOL: POOL, BOTTLE_LOG_LEVEL: process.env.BOTTLE_LOG_LEVEL ?? "warn" };
  const slug = `bench-git-${tag}`;
  const gate = `bottle-git-gate-${slug}`;
  let up: Upstream | undefined;
  try {
    await buildTestImages();
    up = await startUpstream(`bb-bench-git-${tag}`, `10.219.${200 + (process.pid % 50)}.0/24`, dir);
    const manifest = nodePath.join(dir, "bottle.yaml");
    writeFileSync(
      manifest,
      `version: 1\nagents:\n  bench:\n    image: ${GIT_AGENT_IMAGE}\n    git:\n      upstreams:\n        - name: app\n          url: ${up.url}\n          identity_file: ${up.clientKey.private}\n          known_hosts: "${up.knownHostsLine}"\n          address: ${up.address}\n          policy: { push_refs: ["refs/heads/agent/*"] }\n`,
    );
    let connecting: Promise<void> | undefined;
    await startBottle({
      profile: "bench",
      manifest,
      slug,
      env,
      onProgress: (s) => {
        if (s === "up") connecting = connectWhenCreated(gate, up!.network);
      },
    });
    await connecting;
    // The gate's address on the egress network: this machine reaches it
    // there (the internal bridge rejects input from the host's side).
    const gateIp = (await docker(["inspect", "--format", `{{(index .NetworkSettings.Networks "bottle-${slug}-egress").IPAddress}}`, gate])).stdout.trim();

    const work = nodePath.join(dir, "work");
    git(["clone", "-q", up.directUrl, work], dir, up.hostGitEnv);
    const base = git(["rev-parse", "HEAD"], work).trim();
    const t0 = performance.now();
    for (let i = 0; i < RUNS; i++) {
      for (const side of ["gate", "direct"]) execFileSync("git", ["fast-import", "--quiet"], { cwd: work, input: fastImport(`${side}-${i}`, base, COMMITS, `${side}-${i}-${tag}`) });
    }
    const genMs = performance.now() - t0;

    const rows: Array<Record<string, string | number>> = [];
    const times = { gate: [] as number[], direct: [] as number[] };
    for (let i = 0; i < RUNS; i++) {
      // Interleaved, alternating which goes first, so drift in machine load hits both.
      const order = i % 2 ? (["direct", "gate"] as const) : (["gate", "direct"] as const);
      for (const side of order) {
        const url = side === "gate" ? `git://${gateIp}/app` : up.directUrl;
        const t = performance.now();
        git(["push", "-q", url, `refs/heads/${side}-${i}:refs/heads/agent/${side}-${i}`], work, up.hostGitEnv);
        times[side].push(performance.now() - t);
      }
    }
    const decisions = (await readGitDecisions({ slug, env })).decisions.filter((d) => d.ref.startsWith("refs/heads/agent/gate-"));
    for (let i = 0; i < RUNS; i++) {
      const d = decisions.find((x) => x.ref === `refs/heads/agent/gate-${i}`);
      const hook = d?.ms ?? {};
      rows.push({
        run: i + 1,
        "gate s": times.gate[i]! / 1000,
        "direct s": times.direct[i]! / 1000,
        ratio: times.gate[i]! / times.direct[i]!,
        verdict: d?.verdict ?? "?",
        "hook checks ms": hook.checks ?? 0,
        "hook upstream ms": hook.upstream ?? 0,
        "to gate+index ms": Math.round(times.gate[i]! - (hook.total ?? 0)),
        "pack KiB": Math.round((d?.bytes ?? 0) / 1024),
      });
    }
    printTable(`git gate: push of a ${COMMITS}-commit branch, gate vs direct SSH (${RUNS} interleaved runs; branches generated in ${(genMs / 1000).toFixed(1)} s)`, rows);
    const ratio = median(times.gate) / median(times.direct);
    const med = (k: string) => median(decisions.map((d) => d.ms?.[k] ?? 0));
    printTable("git gate: medians", [
      { measure: "gate push (s)", value: median(times.gate) / 1000 },
      { measure: "direct push (s)", value: median(times.direct) / 1000 },
      { measure: "ratio gate/direct (target <= 1.5)", value: ratio },
      { measure: "  client -> gate transfer + index-pack (ms)", value: Math.round(median(times.gate) - med("total")) },
      { measure: "  hook: checks, side by side (ms)", value: med("checks") },
      { measure: "    policy per ref done at", value: med("policy") },
      { measure: "    secret scan of contents done at", value: med("contents") },
      { measure: "    secret scan of path names done at", value: med("paths") },
      { measure: "    upstream symref lookup done at", value: med("symrefs") },
      { measure: "  hook: push to upstream over SSH (ms)", value: med("upstream") },
    ]);
    console.log(ratio <= 1.5 ? "\ngit gate: ratio within target" : "\ngit gate: ratio OVER target (1.5)");
  } finally {
    await stopBottle(slug, { env, purge: true }).catch(() => {});
    await up?.remove();
    if (!process.env.BOTTLE_TEST_KEEP_IMAGES) await docker(["rmi", "-f", SSH_HOST_IMAGE, GIT_AGENT_IMAGE], { reject: false });
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchGitGate();
