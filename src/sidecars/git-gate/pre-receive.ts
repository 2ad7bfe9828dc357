// The pre-receive hook: git daemon's receive-pack runs it (in the bare repo,
// with the pushed objects in quarantine) before any ref moves. It checks every
// ref update against the profile's policy, scans what the push adds for
// secrets, and, when all of that passes, pushes the same updates to the
// upstream. Exiting non-zero makes receive-pack drop the quarantine, so the
// gate's refs only move when the upstream took the push.
import { promises as fs } from "node:fs";
import nodePath from "node:path";
import { performance } from "node:perf_hooks";
import type { GitGateUpstream } from "../../sidecar-config/git-gate.js";
import { loadGateConfig } from "./config.js";
import { git, lastLines } from "./git.js";
import { formatEvent, sendHookLogs } from "./log.js";
import { changeOf, checkRef, parseUpdates, short, type RefUpdate, type Refusal } from "./policy.js";
import { newObjects, scanObjects } from "./scan.js";
import { sshCommand } from "./ssh.js";

export const LOG_SOCKET_ENV = "GIT_GATE_LOG_SOCKET";
export const CONFIG_ENV = "GIT_GATE_CONFIG";
const PREFIX = "bot-bottle git-gate:";

interface Decision {
  update: RefUpdate;
  refusal?: Refusal;
}

export interface UpstreamPush {
  ok: boolean;
  message: string;
}

export async function runPreReceive(stdin: string, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Promise<number> {
  const t0 = performance.now();
  const name = nodePath.basename(cwd).replace(/\.git$/, "");
  const pushId = `${Date.now().toString(36)}-${process.pid}`;
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const lines: string[] = [];
  const log = (event: string, fields: Record<string, unknown>) => lines.push(formatEvent(event, { push: pushId, upstream: name, ...fields }));
  const finish = async (code: number) => {
    if (env[LOG_SOCKET_ENV] && !(await sendHookLogs(env[LOG_SOCKET_ENV], lines))) say(`${PREFIX} warning: could not reach the gate's log`);
    return code;
  };

  let updates: RefUpdate[];
  let upstream: GitGateUpstream | undefined;
  try {
    updates = parseUpdates(stdin);
    upstream = loadGateConfig(env[CONFIG_ENV] ?? "/etc/bottle/git-gate/config.json").upstreams.find((u) => u.name === name);
  } catch (err) {
    say(`${PREFIX} push refused: ${err instanceof Error ? err.message : String(err)}`);
    log("push_error", { message: err instanceof Error ? err.message : String(err) });
    return finish(1);
  }
  if (!upstream) {
    say(`${PREFIX} push refused: no upstream named "${name}" is configured`);
    log("push_error", { message: `no upstream named "${name}"` });
    return finish(1);
  }
  const policy = upstream.policy;

  // 1. Per-ref rules.
  const decisions: Decision[] = [];
  for (const u of updates) {
    const fastForward = changeOf(u) === "update" ? await isAncestor(u.old, u.new, env) : true;
    const refusal = checkRef(u, policy, fastForward);
    decisions.push(refusal ? { update: u, refusal } : { update: u });
  }
  const tPolicy = performance.now();

  // 2. Size of what was received (the quarantined objects).
  const bytes = env.GIT_QUARANTINE_PATH ? await dirSize(env.GIT_QUARANTINE_PATH) : 0;
  let pushRefusal: Refusal | undefined;
  if (!decisions.some((d) => d.refusal) && bytes > policy.max_push_bytes) {
    pushRefusal = { rule: "max_push_bytes", reason: `the push is ${bytes} bytes, over the limit of ${policy.max_push_bytes} (policy.max_push_bytes)` };
  }

  // 3. Secret scan of every object the push adds.
  let scanned = { objects: 0, bytes: 0 };
  if (!decisions.some((d) => d.refusal) && !pushRefusal) {
    const tips = updates.filter((u) => changeOf(u) !== "delete").map((u) => u.new);
    const result = await scanObjects(await newObjects(tips, env), env);
    scanned = { objects: result.objects, bytes: result.bytes };
    if (result.unscannable) pushRefusal = { rule: "secret_scan", reason: `${result.unscannable}; it cannot be scanned for secrets` };
    else if (result.findings.length) {
      const what = result.findings.map((f) => `${f.path ? `file "${f.path}"` : f.type} (${f.type} ${f.object}) contains ${f.description}${f.encoding === "plain" ? "" : ` (${f.encoding})`}`);
      pushRefusal = { rule: "secret_scan", reason: `${what.slice(0, 10).join("; ")}${what.length > 10 ? `; and ${what.length - 10} more` : ""}` };
    }
  }
  const tScan = performance.now();

  const refused = decisions.some((d) => d.refusal) || pushRefusal !== undefined;
  let upstreamResult: UpstreamPush | undefined;
  if (!refused) upstreamResult = await pushUpstream(upstream, updates, env, cwd);
  const tEnd = performance.now();
  const ms = { policy: round(tPolicy - t0), scan: round(tScan - tPolicy), upstream: round(tEnd - tScan), total: round(tEnd - t0) };

  for (const d of decisions) {
    const refusal = d.refusal ?? pushRefusal ?? (refused ? { rule: "atomic" as const, reason: "another ref in this push was refused; nothing was pushed" } : undefined);
    const verdict = refusal || !upstreamResult?.ok ? "refused" : "accepted";
    log("push", {
      ref: d.update.ref,
      old: d.update.old,
      new: d.update.new,
      change: changeOf(d.update),
      verdict,
      ...(refusal ? { rule: refusal.rule, reason: refusal.reason } : !upstreamResult?.ok ? { rule: "upstream", reason: "the upstream refused the push" } : {}),
      upstream_result: upstreamResult ? (upstreamResult.ok ? "ok" : "refused") : "not-attempted",
      ...(upstreamResult && !upstreamResult.ok ? { upstream_message: upstreamResult.message } : {}),
      bytes,
      objects: scanned.objects,
      ms,
    });
  }

  if (refused) {
    say(`${PREFIX} push to "${name}" refused; nothing was pushed upstream`);
    for (const d of decisions) {
      const r = d.refusal ?? pushRefusal ?? { rule: "atomic", reason: "another ref in this push was refused" };
      say(`  ${d.update.ref}: refused by rule "${r.rule}": ${r.reason}`);
    }
    return finish(1);
  }
  if (!upstreamResult!.ok) {
    say(`${PREFIX} upstream "${name}" refused the push; the gate's refs are unchanged. Upstream said:`);
    for (const l of upstreamResult!.message.split("\n")) say(`  ${l}`);
    return finish(1);
  }
  say(`${PREFIX} pushed to upstream "${name}": ${updates.map((u) => `${u.ref} ${changeOf(u) === "delete" ? "deleted" : `${short(u.old)}..${short(u.new)}`}`).join(", ")}`);
  return finish(0);
}

async function isAncestor(old: string, next: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  const r = await git(["merge-base", "--is-ancestor", old, next], { env });
  return r.code === 0;
}

/** Push the same ref updates to the upstream, all or nothing. */
export async function pushUpstream(u: GitGateUpstream, updates: RefUpdate[], env: NodeJS.ProcessEnv, cwd: string): Promise<UpstreamPush> {
  const args = ["push", "--porcelain", "--no-verify"];
  if (updates.length > 1) args.push("--atomic");
  const refspecs: string[] = [];
  for (const x of updates) {
    const change = changeOf(x);
    if (change === "delete") refspecs.push(`:${x.ref}`);
    else refspecs.push(`${x.new}:${x.ref}`);
    // Only what the agent saw may be overwritten (a force push or delete
    // allowed by policy must not clobber someone else's newer work).
    if (change !== "create") args.push(`--force-with-lease=${x.ref}:${x.old}`);
  }
  const r = await git([...args, u.url, ...refspecs], { cwd, env: { ...env, GIT_SSH_COMMAND: sshCommand(u), GIT_TERMINAL_PROMPT: "0" }, timeoutMs: 600_000 });
  if (r.code === 0) return { ok: true, message: "" };
  const rejected = r.stdout.split("\n").filter((l) => l.startsWith("!"));
  const message = lastLines([...r.stderr.split("\n").filter((l) => l.trim() && !/^To /.test(l)), ...rejected].join("\n"), 15);
  return { ok: false, message: message || `git push exited ${r.code}` };
}

async function dirSize(dir: string): Promise<number> {
  let total = 0;
  const entries = await fs.readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  for (const e of entries) {
    if (!e.isFile()) continue;
    total += (await fs.stat(nodePath.join(e.parentPath, e.name)).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

const round = (x: number) => Math.round(x);
