// The pre-receive hook: receive-pack runs it (in the bare repo, with the
// pushed objects in quarantine) before any ref moves. It checks every ref
// update against the profile's policy (names by git's rules, protected and
// allowed refs, judged where they really land upstream), scans what the push
// adds (contents, paths and ref names) for secrets, and, when all of that
// passes, pushes the same updates to the upstream. Exiting non-zero makes
// receive-pack drop the quarantine, so the gate's refs only move when the
// upstream took the push. Every update it sees gets a decision record, also
// when the hook itself fails; what it never sees, the gate's server records.
import { existsSync, promises as fs } from "node:fs";
import nodePath from "node:path";
import { performance } from "node:perf_hooks";
import { escapeAgentText } from "../../contracts/escape.js";
import type { GitGatePolicy, GitGateUpstream } from "../../contracts/git-gate.js";
import { GIT_GATE_CONFIG_PATH } from "../../contracts/mounts.js";
import { matchStdin, PUSH_ID_ENV, PUSHES_DIR, PUSHES_DIR_ENV, readCommands } from "./commands.js";
import { loadGateConfig } from "./config.js";
import { lastLines } from "../kit/text.js";
import { git } from "./git.js";
import { formatEvent, sendHookLogs } from "./log.js";
import { describe, describePathFindings, displayRef, refNameSecrets, scanNewPaths, withholdSecrets } from "./names.js";
import { changeOf, checkRef, checkRefName, checkSymrefTarget, HookInputError, parseUpdates, short, type RefUpdate, type Refusal } from "./policy.js";
import { pushFields, UPSTREAM_PUSH_EVENT, type UpstreamResult } from "./records.js";
import { newObjects, scanObjects } from "./scan.js";
import { upstreamGitEnv, upstreamSymrefs } from "./symrefs.js";

export const LOG_SOCKET_ENV = "GIT_GATE_LOG_SOCKET";
export const CONFIG_ENV = "GIT_GATE_CONFIG";
const PREFIX = "bot-bottle git-gate:";
const ZERO = (len: number) => "0".repeat(len);

/** One update of this push, numbered as the agent sent them (1-based). */
interface Judged {
  update: RefUpdate;
  index: number;
  /** How the name may be shown (withheld when it holds a secret). */
  shown: string;
  refusal?: Refusal | undefined;
}

export interface UpstreamPush {
  ok: boolean;
  message: string;
}

export async function runPreReceive(stdin: Buffer | string, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Promise<number> {
  const t0 = performance.now();
  const name = nodePath.basename(cwd).replace(/\.git$/, "");
  const wireId = env[PUSH_ID_ENV] && /^[A-Za-z0-9-]{1,64}$/.test(env[PUSH_ID_ENV]) ? env[PUSH_ID_ENV] : undefined;
  const pushId = wireId ?? `${Date.now().toString(36)}-${process.pid}`;
  const input = typeof stdin === "string" ? Buffer.from(stdin, "utf8") : stdin;
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const lines: string[] = [];
  const log = (event: string, fields: Record<string, unknown>) => lines.push(formatEvent(event, { push: pushId, upstream: name, ...fields }));
  const socket = env[LOG_SOCKET_ENV];
  const finish = async (code: number) => {
    if (socket && !(await sendHookLogs(socket, lines))) say(`${PREFIX} warning: could not reach the gate's log`);
    return code;
  };
  const record = (
    j: Judged,
    verdict: "accepted" | "refused",
    refusal: Refusal | undefined,
    upstream: UpstreamResult,
    extra: { upstream_message?: string; bytes?: number; objects?: number; ms?: Record<string, number> } = {},
  ) =>
    log(
      "push",
      pushFields({
        push: pushId,
        upstream: name,
        ref: j.shown,
        index: j.index,
        old: j.update.old,
        new: j.update.new,
        verdict,
        ...(refusal ? { rule: refusal.rule, reason: refusal.reason } : {}),
        upstream_result: upstream,
        ...extra,
      }),
    );

  // Which updates this push makes.
  let judged: Judged[];
  const pushesDir = env[PUSHES_DIR_ENV] ?? PUSHES_DIR;
  try {
    judged = gatherUpdates(input, wireId, pushesDir);
  } catch (err) {
    const msg = withholdSecrets(err instanceof Error ? err.message : String(err));
    say(`${PREFIX} push refused: ${escapeAgentText(msg)}`);
    // Every update the agent sent is refused, each on its own record when the server's list is there.
    const sent = wireId && existsSync(`${pushesDir}/${wireId}.json`) ? readCommands(wireId, pushesDir) : [];
    for (const [i, c] of sent.entries()) {
      log(
        "push",
        pushFields({
          push: pushId,
          upstream: name,
          ref: displayRef(c.raw.toString("utf8"), i + 1),
          index: i + 1,
          old: c.old,
          new: c.new,
          verdict: "refused",
          rule: "protocol",
          reason: msg,
          upstream_result: "not-attempted",
        }),
      );
    }
    if (!sent.length)
      log("push", pushFields({ push: pushId, upstream: name, ref: "(unreadable)", old: ZERO(40), new: ZERO(40), verdict: "refused", rule: "protocol", reason: msg, upstream_result: "not-attempted" }));
    return finish(1);
  }

  let upstreamStarted = false;
  try {
    const code = await judge();
    return await finish(code);
  } catch (err) {
    // The check itself failed: the push is refused, and recorded as such.
    const msg = withholdSecrets(err instanceof Error ? err.message : String(err));
    const refusal: Refusal = { rule: "hook_error", reason: `the gate's check failed: ${msg}` };
    lines.length = 0; // one record per update: these replace any the check had begun to write
    for (const j of judged) record(j, "refused", refusal, upstreamStarted ? "unknown" : "not-attempted");
    say(`${PREFIX} push to "${name}" refused: the gate's check failed (${escapeAgentText(msg)})${upstreamStarted ? "; the upstream may have received it" : "; nothing was pushed upstream"}`);
    return finish(1);
  }

  async function judge(): Promise<number> {
    const upstream = loadGateConfig(env[CONFIG_ENV] ?? GIT_GATE_CONFIG_PATH).upstreams.find((u) => u.name === name);
    if (!upstream) throw new Error(`no upstream named "${name}" is configured`);
    const policy = upstream.policy;

    const parts: Record<string, number> = {};
    // 1. Names first (git's rules, secrets, duplicates): a name that fails
    // here is never passed on, not even to ask the upstream about it.
    checkNames(judged);
    let pushRefusal: Refusal | undefined;
    let scanned = { objects: 0, bytes: 0 };
    let bytes = 0;
    if (!judged.some((j) => j.refusal)) {
      // 2. Then, side by side: the policy per ref, the size received, secrets
      // in what the push adds (contents and path names), and where each name
      // really lands upstream (symbolic refs).
      const tips = judged.filter((j) => changeOf(j.update) !== "delete").map((j) => j.update.new);
      const timed = <T>(key: string, p: Promise<T>) => p.finally(() => (parts[key] = round(performance.now() - t0)));
      const [, size, contents, paths, symrefs] = await Promise.all([
        timed("policy", judgeRefs(judged, policy, env)),
        env.GIT_QUARANTINE_PATH ? dirSize(env.GIT_QUARANTINE_PATH) : Promise.resolve(0),
        timed(
          "contents",
          newObjects(tips, env).then((objects) => scanObjects(objects, env)),
        ),
        timed(
          "paths",
          newCommits(tips, env).then((commits) => scanNewPaths(commits, env)),
        ),
        timed(
          "symrefs",
          upstreamSymrefs(
            upstream,
            judged.map((j) => j.update.ref),
            env,
            cwd,
          ).then(
            (m) => m,
            (err: unknown) => err as Error,
          ),
        ),
      ]);
      bytes = size;
      scanned = { objects: contents.objects, bytes: contents.bytes };
      if (bytes > policy.max_push_bytes) pushRefusal = { rule: "max_push_bytes", reason: `the push is ${bytes} bytes, over the limit of ${policy.max_push_bytes} (policy.max_push_bytes)` };
      else if (contents.unscannable) pushRefusal = { rule: "secret_scan", reason: `${contents.unscannable}; it cannot be scanned for secrets` };
      else if (paths.unscannable) pushRefusal = { rule: "secret_scan", reason: paths.unscannable };
      else if (contents.findings.length || paths.findings.length) {
        const what = contents.findings.map((f) => `${f.path ? `file "${f.path}"` : f.type} (${f.type} ${f.object}) contains ${f.description}${f.encoding === "plain" ? "" : ` (${f.encoding})`}`);
        const reasons = [
          ...(what.length ? [`${what.slice(0, 10).join("; ")}${what.length > 10 ? `; and ${what.length - 10} more` : ""}`] : []),
          ...(paths.findings.length ? [describePathFindings(paths.findings)] : []),
        ];
        pushRefusal = { rule: "secret_scan", reason: reasons.join("; ") };
      } else if (symrefs instanceof Error) pushRefusal = { rule: "upstream", reason: withholdSecrets(symrefs.message) };
      else {
        for (const j of judged) {
          const target = symrefs.get(j.update.ref);
          if (!target || j.refusal) continue;
          const ff = changeOf(j.update) === "update" ? await isAncestor(j.update.old, j.update.new, env) : true;
          const r = checkSymrefTarget(j.update, withholdSecrets(target), policy, ff);
          if (r) j.refusal = r;
        }
      }
    }
    const tScan = performance.now();

    const refused = judged.some((j) => j.refusal) || pushRefusal !== undefined;
    let upstreamResult: UpstreamPush | undefined;
    if (!refused) {
      if (socket) await sendHookLogs(socket, [formatEvent(UPSTREAM_PUSH_EVENT, { push: pushId, upstream: name })]);
      upstreamStarted = true;
      upstreamResult = await pushUpstream(
        upstream,
        judged.map((j) => j.update),
        env,
        cwd,
      );
    }
    const tEnd = performance.now();
    // checks (names, then policy, size, scans and the symref lookup side by
    // side) and upstream add up to total; policy, contents, paths and
    // symrefs say when each parallel part was done.
    const ms = { checks: round(tScan - t0), upstream: round(tEnd - tScan), total: round(tEnd - t0), ...parts };

    for (const j of judged) {
      const refusal = j.refusal ?? pushRefusal ?? (refused ? { rule: "atomic" as const, reason: "another ref in this push was refused; nothing was pushed" } : undefined);
      const upstreamFailed = upstreamResult !== undefined && !upstreamResult.ok;
      record(
        j,
        refusal || upstreamFailed ? "refused" : "accepted",
        refusal ?? (upstreamFailed ? { rule: "upstream", reason: "the upstream refused the push" } : undefined),
        upstreamResult ? (upstreamResult.ok ? "ok" : "refused") : "not-attempted",
        {
          ...(upstreamFailed ? { upstream_message: upstreamResult!.message } : {}),
          bytes,
          objects: scanned.objects,
          ms,
        },
      );
    }

    if (refused) {
      say(`${PREFIX} push to "${name}" refused; nothing was pushed upstream`);
      for (const j of judged) {
        const r = j.refusal ?? pushRefusal ?? { rule: "atomic", reason: "another ref in this push was refused" };
        say(`  ${escapeAgentText(j.shown)}: refused by rule "${r.rule}": ${escapeAgentText(r.reason)}`);
      }
      return 1;
    }
    if (!upstreamResult!.ok) {
      say(`${PREFIX} upstream "${name}" refused the push; the gate's refs are unchanged. Upstream said:`);
      for (const l of upstreamResult!.message.split("\n")) say(`  ${escapeAgentText(l)}`);
      return 1;
    }
    say(`${PREFIX} pushed to upstream "${name}": ${judged.map((j) => `${j.shown} ${changeOf(j.update) === "delete" ? "deleted" : `${short(j.update.old)}..${short(j.update.new)}`}`).join(", ")}`);
    return 0;
  }
}

/**
 * The updates to judge. With the server's list of what the agent sent (the
 * normal case), stdin must be consistent with it and the names come from it
 * (whole, even with a newline inside); without it, stdin is parsed strictly.
 */
function gatherUpdates(stdin: Buffer, wireId: string | undefined, dir: string): Judged[] {
  const make = (update: RefUpdate, index: number): Judged => ({ update, index, shown: displayRef(update.ref, index) });
  if (wireId) {
    if (!existsSync(`${dir}/${wireId}.json`)) throw new HookInputError("the gate has no list of this push's ref updates");
    const commands = readCommands(wireId, dir);
    const taken = matchStdin(stdin, commands);
    if (!taken) throw new HookInputError("the hook's input does not match the ref updates the gate received");
    if (!taken.length) throw new HookInputError("the hook received no ref updates");
    return taken.map((i) => {
      const c = commands[i]!;
      return make({ old: c.old, new: c.new, ref: c.raw.toString("utf8"), raw: c.raw }, i + 1);
    });
  }
  return parseUpdates(stdin).map((u, i) => make(u, i + 1));
}

/** Per ref: a name that holds no secret, that git accepts, named once in the push. */
function checkNames(judged: Judged[]): void {
  const seen = new Set<string>();
  for (const j of judged) {
    const secrets = refNameSecrets(j.update.ref);
    if (secrets.length) j.refusal = { rule: "secret_scan", reason: `the name of ref #${j.index} holds ${describe(secrets)}` };
    else j.refusal = checkRefName(j.update, j.update.ref) ?? (seen.has(j.update.ref) ? { rule: "ref_format", reason: `${j.update.ref} is named twice in this push` } : undefined);
    seen.add(j.update.ref);
  }
}

/** Per ref with a good name: current in the gate, allowed by the policy. */
async function judgeRefs(judged: Judged[], policy: GitGatePolicy, env: NodeJS.ProcessEnv): Promise<void> {
  const valid = judged.filter((j) => !j.refusal);
  if (!valid.length) return;
  const current = await gateRefs(
    valid.map((j) => j.update.ref),
    env,
  );
  for (const j of valid) {
    const u = j.update;
    const now = current.get(u.ref);
    const expected = changeOf(u) === "create" ? undefined : u.old;
    if (now !== expected) {
      j.refusal = {
        rule: "stale",
        reason: `${u.ref} is ${now ? `at ${short(now)}` : "absent"} in the gate, not ${changeOf(u) === "create" ? "absent" : `at ${short(u.old)}`} as the push assumes; fetch and retry`,
      };
      continue;
    }
    const fastForward = changeOf(u) === "update" ? await isAncestor(u.old, u.new, env) : true;
    const r = checkRef(u, policy, fastForward);
    if (r) j.refusal = r;
  }
}

/** The gate's current value of each of these refs (absent ones are missing from the map). */
async function gateRefs(refs: string[], env: NodeJS.ProcessEnv): Promise<Map<string, string>> {
  const r = await git(["for-each-ref", "--format=%(objectname) %(refname)", ...refs], { env });
  if (r.code !== 0) throw new Error(`git for-each-ref failed: ${lastLines(r.stderr, 2)}`);
  const wanted = new Set(refs);
  const out = new Map<string, string>();
  for (const line of r.stdout.split("\n")) {
    const sp = line.indexOf(" ");
    if (sp > 0 && wanted.has(line.slice(sp + 1))) out.set(line.slice(sp + 1), line.slice(0, sp));
  }
  return out;
}

async function isAncestor(old: string, next: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  const r = await git(["merge-base", "--is-ancestor", old, next], { env });
  return r.code === 0;
}

/** The commits this push adds (reachable from the tips, not from any ref). */
async function newCommits(tips: string[], env: NodeJS.ProcessEnv): Promise<string[]> {
  if (!tips.length) return [];
  const r = await git(["rev-list", "--stdin", "--not", "--all"], { env, input: `${tips.join("\n")}\n` });
  if (r.code !== 0) throw new Error(`git rev-list failed: ${lastLines(r.stderr, 2)}`);
  return r.stdout.split("\n").filter(Boolean);
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
  const r = await git([...args, u.url, ...refspecs], { cwd, env: upstreamGitEnv(u, env), timeoutMs: 600_000 });
  if (r.code === 0) return { ok: true, message: "" };
  const rejected = r.stdout.split("\n").filter((l) => l.startsWith("!"));
  const message = lastLines([...r.stderr.split("\n").filter((l) => l.trim() && !/^To /.test(l)), ...rejected].join("\n"), 15);
  return { ok: false, message: withholdSecrets(message || `git push exited ${r.code}`) };
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
