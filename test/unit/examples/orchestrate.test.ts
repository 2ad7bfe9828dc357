// examples/orchestrate/orchestrate.mjs against a stand-in MCP client: the
// order and arguments of its tool calls, that it waits on every task at once
// reading each by cursor, that a failed sub-agent is reported and a failed
// start thrown, and that every bottle is stopped whatever happened.
// (test/integration/orchestrate.test.ts runs it for real.)
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { describe, expect, it } from "vitest";
import { formatReport, orchestrate, parseResult, SUB_AGENT_SCRIPT } from "../../../examples/orchestrate/orchestrate.mjs";

const SHA = "0123456789abcdef0123456789abcdef01234567";
const slugs = ["o-1", "o-2", "o-3"];

interface Call {
  name: string;
  args: Record<string, unknown>;
}

/** A stand-in for the server: bottles that start (or not), tasks that print two chunks and exit with a given code. */
function standIn(o: { failStart?: string; exit?: Record<string, number> } = {}) {
  const calls: Call[] = [];
  const reads = new Map<string, number>();
  const waiting = new Set<string>();
  let allWaiting!: () => void;
  const barrier = new Promise<void>((resolve) => (allWaiting = resolve));
  const ok = (structuredContent: unknown) => ({ content: [{ type: "text", text: "ok" }], structuredContent });

  const callTool = async (params: { name: string; arguments: Record<string, unknown> }, _schema?: unknown, options?: { onprogress?: (p: { progress: number; message?: string }) => void }) => {
    const { name, arguments: args } = params;
    const slug = String(args.slug);
    calls.push({ name, args });
    switch (name) {
      case "bottle_start":
        options?.onprogress?.({ progress: 1, message: "up: docker compose up" });
        if (slug === o.failStart) return { isError: true, content: [{ type: "text", text: "docker compose up failed (exit 1)" }] };
        return ok({ slug, state: "running", cloneUrls: [{ name: "repo", url: `git://bottle-git-gate-${slug}/repo` }] });
      case "bottle_run":
        return ok({ taskId: `t-${slug}`, slug, startedAt: "2026-11-30T12:00:00.000Z" });
      case "bottle_task": {
        const n = reads.get(slug) ?? 0;
        reads.set(slug, n + 1);
        if (n === 0) {
          // Every first wait is held until all of them are waiting: an orchestrator that waited one task at a time never gets past it.
          waiting.add(slug);
          if (waiting.size === slugs.length) allWaiting();
          let timer: NodeJS.Timeout | undefined;
          const late = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`waits are not concurrent: only ${[...waiting]} waiting`)), 2_000)));
          await Promise.race([barrier, late]).finally(() => clearTimeout(timer));
          return ok({ tasks: [{ taskId: args.task_id, state: "running" }], output: { from: 0, next: 6, skipped: 0, text: "clone\n", complete: false } });
        }
        const code = o.exit?.[slug] ?? 0;
        const text = code === 0 ? `remote: pushed   \nRESULT branch=agent/${slug} commit=${SHA} file=notes/agent-${slug}.md\n` : "fatal: the remote end hung up\n";
        const from = Number(args.output_from);
        return ok({
          tasks: [{ taskId: args.task_id, state: code === 0 ? "exited" : "failed", exitCode: code }],
          output: { from, next: from + text.length, skipped: 0, text, complete: true },
        });
      }
      case "bottle_git_log":
        return ok({ source: "live", decisions: [{ ref: `refs/heads/agent/${slug}`, old: "0".repeat(40), new: SHA, verdict: "accepted", upstreamResult: "ok" }] });
      case "bottle_stop":
        return ok({ slug, state: "stopped", wasState: "running", ms: 1 });
      default:
        throw new Error(`unexpected tool ${name}`);
    }
  };
  return { client: { callTool } as unknown as Pick<Client, "callTool">, calls, named: (name: string) => calls.filter((c) => c.name === name) };
}

describe("examples/orchestrate", () => {
  it("starts every bottle, runs the sub-agent with its clone URL and branch, waits on all at once by cursor, reads the gate's log, stops all", async () => {
    const s = standIn();
    const log: string[] = [];
    const progress: string[] = [];
    const report = await orchestrate(s.client, {
      profile: "worker",
      manifest: "/m/bottle.yaml",
      slugs,
      waitS: 7,
      log: (l) => log.push(l),
      onProgress: (slug, m) => progress.push(`${slug} ${m}`),
    });

    expect(s.named("bottle_start").map((c) => c.args)).toEqual(slugs.map((slug) => ({ profile: "worker", slug, manifest: "/m/bottle.yaml" })));
    expect(progress).toEqual(slugs.map((slug) => `${slug} up: docker compose up`));
    expect(s.named("bottle_run").map((c) => c.args)).toEqual(
      slugs.map((slug) => ({
        slug,
        argv: ["sh", "-s"],
        stdin: SUB_AGENT_SCRIPT,
        env: { AGENT_CLONE_URL: `git://bottle-git-gate-${slug}/repo`, AGENT_BRANCH: `agent/${slug}`, AGENT_TASK: `Notes from sub-agent ${slug}` },
        timeout_s: 600,
      })),
    );
    // Each task read twice: from 0, then on from the cursor the first read returned.
    for (const slug of slugs)
      expect(
        s
          .named("bottle_task")
          .filter((c) => c.args.slug === slug)
          .map((c) => [c.args.task_id, c.args.wait_s, c.args.output_from]),
      ).toEqual([
        [`t-${slug}`, 7, 0],
        [`t-${slug}`, 7, 6],
      ]);
    expect(s.named("bottle_stop").map((c) => c.args.slug)).toEqual(slugs);
    // Stop comes last.
    expect(s.calls.slice(-3).map((c) => c.name)).toEqual(["bottle_stop", "bottle_stop", "bottle_stop"]);

    expect(report.agents.map((a) => [a.slug, a.state, a.exitCode, a.result])).toEqual(
      slugs.map((slug) => [slug, "exited", 0, { branch: `agent/${slug}`, commit: SHA, file: `notes/agent-${slug}.md` }]),
    );
    expect(report.agents[0]!.output).toBe(`clone\nremote: pushed   \nRESULT branch=agent/o-1 commit=${SHA} file=notes/agent-o-1.md\n`);
    expect(report.agents[0]!.decisions).toEqual([{ ref: "refs/heads/agent/o-1", old: "0".repeat(40), new: SHA, verdict: "accepted", upstreamResult: "ok" }]);
    expect(log).toContain("[o-2] | remote: pushed"); // trailing blanks trimmed
    expect(log).toContain("[o-2] task exited (exit 0)");
    expect(formatReport(report).split("\n").slice(0, 2)).toEqual(["o-1: exited 0, agent/o-1 @ 0123456789ab", "  git gate: refs/heads/agent/o-1 accepted, upstream ok"]);
  });

  it("reports a sub-agent that failed without throwing, and still stops every bottle", async () => {
    const s = standIn({ exit: { "o-2": 128 } });
    const report = await orchestrate(s.client, { profile: "worker", slugs });
    expect(report.agents.map((a) => [a.slug, a.state, a.exitCode, a.result !== undefined])).toEqual([
      ["o-1", "exited", 0, true],
      ["o-2", "failed", 128, false],
      ["o-3", "exited", 0, true],
    ]);
    expect(formatReport(report)).toContain("o-2: failed 128, no RESULT line");
    expect(s.named("bottle_stop")).toHaveLength(3);
  });

  it("throws when a bottle cannot start, after every start settled, runs nothing, and stops every slug", async () => {
    const s = standIn({ failStart: "o-2" });
    const log: string[] = [];
    await expect(orchestrate(s.client, { profile: "worker", slugs, log: (l) => log.push(l) })).rejects.toThrow(/could not start every bottle:\nbottle_start o-2: docker compose up failed \(exit 1\)/);
    expect(s.named("bottle_start")).toHaveLength(3);
    expect(s.named("bottle_run")).toEqual([]);
    expect(s.named("bottle_stop").map((c) => c.args.slug)).toEqual(slugs);
    expect(log.filter((l) => l.endsWith("stopped"))).toEqual(slugs.map((slug) => `[${slug}] stopped`));
  });

  it("reads the last RESULT line", () => {
    expect(parseResult("x\nRESULT a=1 b=c=d\nRESULT branch=agent/x commit=abc\ntrailer\n")).toEqual({ branch: "agent/x", commit: "abc" });
    expect(parseResult("no result\n")).toBeUndefined();
  });
});
