// The gate's server process: prepare one bare repository per upstream, fetch
// every upstream (all branches and tags) with the mounted identity and the
// pinned known_hosts, then serve the repositories over git:// (our own
// server, daemon.ts, which records every push outcome). Health
// (/usr/local/bin/git-gate-health) is "the initial fetch succeeded and the
// server accepts connections". A fetch that cannot succeed ends the process
// with a clear log line, which fails the container and so `bottle_start`.
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { userInfo } from "node:os";
import type { GitGateConfig, GitGateUpstream } from "../../contracts/git-gate.js";
import { PUSHES_DIR } from "./commands.js";
import { loadGateConfig, repoDir } from "./config.js";
import { HookTracker, startGitServer, type GitServer } from "./daemon.js";
import { signalReady } from "../kit/ready.js";
import { settleHeap } from "../kit/settle.js";
import { lastLines } from "../kit/text.js";
import { git, gitOk } from "./git.js";
import { createEventLog, listenForHookLogs, type EventLog } from "./log.js";
import { CONFIG_ENV, LOG_SOCKET_ENV } from "./pre-receive.js";
import { classifySshFailure, controlPath, FAILURE_HELP, NSS_GROUP, NSS_PASSWD, RUN_DIR, sshInvocation, sshTarget } from "./ssh.js";
import { upstreamGitEnv } from "./symrefs.js";

export const READY_FILE = `${RUN_DIR}/ready`;
const LOG_SOCKET = `${RUN_DIR}/log.sock`;
const HOOKS_DIR = "/app/hooks";
/** How long the first fetch keeps retrying an unreachable upstream (the network may still be coming up). */
const STARTUP_RETRY_MS = Number(process.env.GIT_GATE_STARTUP_RETRY_MS ?? 30_000);

export class UpstreamError extends Error {}

export async function serve(configFile: string): Promise<void> {
  const log = createEventLog();
  const config = loadGateConfig(configFile);
  rmSync(READY_FILE, { force: true });
  mkdirSync(`${RUN_DIR}/home`, { recursive: true, mode: 0o700 });
  chmodSync(RUN_DIR, 0o700);
  ensurePasswdEntry(log);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: `${RUN_DIR}/home`,
    GIT_TERMINAL_PROMPT: "0",
    GIT_COMMITTER_NAME: "bot-bottle git-gate",
    GIT_COMMITTER_EMAIL: "git-gate@bot-bottle.invalid",
    [CONFIG_ENV]: configFile,
    [LOG_SOCKET_ENV]: LOG_SOCKET,
  };
  rmSync(LOG_SOCKET, { force: true });
  rmSync(PUSHES_DIR, { recursive: true, force: true });
  mkdirSync(PUSHES_DIR, { recursive: true, mode: 0o700 });
  const tracker = new HookTracker();
  const logServer = await listenForHookLogs(LOG_SOCKET, (l) => {
    tracker.observe(l);
    process.stdout.write(l);
  });

  for (const u of config.upstreams) await initRepo(u, env);
  try {
    await Promise.all(config.upstreams.map((u) => fetchUpstream(u, env, log, Date.now() + STARTUP_RETRY_MS)));
  } catch (err) {
    log("startup_failed", { level: "error", msg: err instanceof Error ? err.message : String(err) });
    process.exitCode = 1;
    logServer.close();
    return;
  }

  const masters = config.upstreams.map((u) => holdConnection(u, env, log));
  let current = config;
  const gitServer = await startServer(
    configFile,
    () => current,
    (c) => (current = c),
    env,
    log,
    tracker,
  );
  await waitForPort(config.port, 10_000);
  writeFileSync(READY_FILE, `${new Date().toISOString()}\n`);
  signalReady();
  settleHeap();
  log("ready", { port: config.port, upstreams: config.upstreams.map((u) => u.name) });

  process.on("SIGHUP", () => {
    // Refresh from the upstreams (e.g. after someone else pushed).
    void Promise.all(
      config.upstreams.map((u) =>
        fetchUpstream(u, env, log, Date.now()).catch((err: unknown) => log("refresh_failed", { level: "error", upstream: u.name, msg: err instanceof Error ? err.message : String(err) })),
      ),
    );
  });
  const stop = () => {
    log("stopping", {});
    for (const m of masters) m.stop();
    void gitServer.closeAll();
    logServer.close();
    setTimeout(() => process.exit(0), 500).unref();
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  gitServer.on("error", (err) => {
    log("server_failed", { level: "error", msg: err.message });
    process.exit(1);
  });
}

/**
 * The git:// server. Each connection reads the config file again (the hook
 * does too), so a policy change applies to the next push: receive-pack gets
 * git's checks with the size limit as the policy says now.
 */
function startServer(configFile: string, get: () => GitGateConfig, set: (c: GitGateConfig) => void, env: NodeJS.ProcessEnv, log: EventLog, tracker: HookTracker): Promise<GitServer> {
  return startGitServer({
    port: get().port,
    env,
    log,
    tracker,
    writeRecord: (line) => {
      tracker.observe(line);
      process.stdout.write(line);
    },
    resolve: (name) => {
      try {
        set(loadGateConfig(configFile));
      } catch (err) {
        log("config_reload_failed", { level: "warn", msg: err instanceof Error ? err.message : String(err) });
      }
      const u = get().upstreams.find((x) => x.name === name);
      return u ? { name: u.name, dir: repoDir(u.name), maxPushBytes: u.policy.max_push_bytes } : undefined;
    },
  });
}

/**
 * ssh refuses to run for a uid /etc/passwd does not know ("No user exists
 * for uid"). The gate runs as the host user's uid (so it can read the 0600
 * identity file without any capability), which the image does not know: give
 * ssh an entry through nss_wrapper, loaded only into ssh (see ssh.ts).
 */
function ensurePasswdEntry(log: EventLog): void {
  try {
    userInfo();
    rmSync(NSS_PASSWD, { force: true });
    return;
  } catch {
    const uid = process.getuid?.() ?? 65534;
    const gid = process.getgid?.() ?? 65534;
    writeFileSync(NSS_PASSWD, `git-gate:x:${uid}:${gid}:bot-bottle git gate:${RUN_DIR}/home:/usr/sbin/nologin\n`);
    writeFileSync(NSS_GROUP, `git-gate:x:${gid}:\n`);
    log("passwd_entry", { uid, gid, via: "nss_wrapper" });
  }
}

async function initRepo(u: GitGateUpstream, env: NodeJS.ProcessEnv): Promise<void> {
  const dir = repoDir(u.name);
  if (!existsSync(dir)) await gitOk(["init", "--quiet", "--bare", dir], { env });
  const set = (k: string, v: string) => gitOk(["config", k, v], { cwd: dir, env });
  await set("core.hooksPath", HOOKS_DIR);
  // The hook is the only judge; keep git's own ref checks from answering first without a rule name.
  await set("receive.denyNonFastForwards", "false");
  await set("receive.denyDeletes", "false");
  // Git's own object checks (a tree holding .git, .GIT or another spelling
  // git treats as .git, malformed objects) and its streaming size limit. The
  // server passes both again per push, with the policy's current size.
  await set("receive.fsckObjects", "true");
  await set("receive.maxInputSize", String(u.policy.max_push_bytes));
  await set("gc.auto", "0");
}

/** Mirror every branch and tag of the upstream into the gate's repo, retrying while it is unreachable. */
export async function fetchUpstream(u: GitGateUpstream, env: NodeJS.ProcessEnv, log: EventLog, retryUntil: number): Promise<void> {
  const dir = repoDir(u.name);
  const sshEnv = upstreamGitEnv(u, env);
  const trace = `${RUN_DIR}/trace-${u.name}`;
  for (let attempt = 1; ; attempt++) {
    const t0 = Date.now();
    rmSync(trace, { force: true });
    const head = await git(["-c", "protocol.version=2", "ls-remote", "--symref", u.url, "HEAD"], { cwd: dir, env: { ...sshEnv, GIT_TRACE_PACKET: trace }, timeoutMs: 60_000 });
    const protocol = protocolOf(trace);
    const r =
      head.code === 0
        ? await git(["fetch", "--quiet", "--prune", "--no-write-fetch-head", u.url, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"], { cwd: dir, env: sshEnv, timeoutMs: 600_000 })
        : head;
    if (r.code === 0) {
      const branch = /^ref: (refs\/heads\/\S+)\tHEAD$/m.exec(head.stdout)?.[1];
      if (branch) await git(["symbolic-ref", "HEAD", branch], { cwd: dir, env });
      const refs = (await git(["for-each-ref", "--format=%(refname)"], { cwd: dir, env })).stdout.split("\n").filter(Boolean).length;
      log("fetched", { upstream: u.name, url: u.url, refs, head: branch ?? null, protocol, attempt, ms: Date.now() - t0 });
      if (protocol !== 2) {
        log("upstream_protocol", {
          level: "warn",
          upstream: u.name,
          protocol,
          msg: "the upstream does not speak git protocol v2, so its symbolic refs other than HEAD cannot be seen: a push to a name that is a symbolic ref upstream is judged by its own name only",
        });
      }
      return;
    }
    const kind = classifySshFailure(r.stderr);
    const detail = lastLines(r.stderr.replace(/\r/g, ""), 3).replace(/\n/g, " | ");
    const retry = kind === "unreachable" && Date.now() < retryUntil;
    log("fetch_failed", { level: retry ? "warn" : "error", upstream: u.name, url: u.url, kind, attempt, detail, retrying: retry });
    if (!retry) throw new UpstreamError(`upstream "${u.name}" (${u.url}): ${FAILURE_HELP[kind]}: ${detail}`);
    await new Promise((r) => setTimeout(r, Math.min(2000, 250 * attempt)));
  }
}

/**
 * Keep one SSH connection per upstream open (ssh -M -N on a control socket)
 * so a push skips the key exchange and authentication; reconnect when it
 * drops. Pushes fall back to their own connection while it is down.
 */
function holdConnection(u: GitGateUpstream, env: NodeJS.ProcessEnv, log: EventLog): { stop(): void } {
  const t = sshTarget(u.url);
  const target = `${t.user ? `${t.user}@` : ""}${t.host}`;
  let child: ChildProcess | undefined;
  let stopped = false;
  let failures = 0;
  const start = () => {
    if (stopped) return;
    const since = Date.now();
    rmSync(controlPath(u.name), { force: true });
    const ssh = sshInvocation(u, { master: true });
    child = spawn("ssh", [...ssh.args, "-o", "ServerAliveCountMax=3", "-N", ...(t.port ? ["-p", String(t.port)] : []), target], { env: { ...env, ...ssh.env }, stdio: "ignore" });
    child.on("exit", (code) => {
      if (stopped) return;
      // Quick deaths back off (an unreachable upstream must not spin); a long-lived connection that drops reconnects at once.
      failures = Date.now() - since > 60_000 ? 0 : failures + 1;
      if (failures === 1 || failures % 20 === 0) log("upstream_connection_closed", { level: "warn", upstream: u.name, code, failures });
      setTimeout(start, Math.min(60_000, 1000 * 2 ** Math.min(failures, 6))).unref();
    });
  };
  start();
  return {
    stop: () => {
      stopped = true;
      child?.kill("SIGTERM");
    },
  };
}

/** Which protocol version an upstream answered with, from a GIT_TRACE_PACKET file. */
function protocolOf(traceFile: string): number {
  try {
    const text = readFileSync(traceFile, "utf8");
    return /< version 2$/m.test(text) ? 2 : 0;
  } catch {
    return 0;
  } finally {
    rmSync(traceFile, { force: true });
  }
}

function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve();
      });
      s.once("error", () => {
        s.destroy();
        if (Date.now() > until) reject(new Error(`the git:// server did not listen on ${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}
