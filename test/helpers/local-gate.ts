// The git gate's server and hook on this machine, without Docker: the real
// git:// server (src/sidecars/git-gate/daemon.ts) over a real bare repo whose
// pre-receive hook is the gate's bundled hook, forwarding to a local bare
// "upstream". Fast enough to try every refusal path; the Docker test
// (test/integration/git-gate.test.ts) runs the same code in the image.
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { connect, type AddressInfo } from "node:net";
import nodePath from "node:path";
import { build } from "esbuild";
import { parseGitDecisions, type GitDecision } from "../../src/bottles/git-log.js";
import { PUSHES_DIR_ENV } from "../../src/sidecars/git-gate/commands.js";
import { HookTracker, startGitServer } from "../../src/sidecars/git-gate/daemon.js";
import { listenForHookLogs, type EventLog } from "../../src/sidecars/git-gate/log.js";
import { CONFIG_ENV, LOG_SOCKET_ENV } from "../../src/sidecars/git-gate/pre-receive.js";
import { encodePkt, FLUSH_PKT, PktReader } from "../../src/sidecars/git-gate/pktline.js";
import type { GitGatePolicy } from "../../src/contracts/git-gate.js";

const ROOT = nodePath.resolve(import.meta.dirname, "../..");
let bundled: Promise<string> | undefined;

/** The hook as the image runs it: main.ts bundled into one file. */
function bundle(dir: string): Promise<string> {
  bundled ??= (async () => {
    const out = nodePath.join(dir, "git-gate.mjs");
    await build({
      entryPoints: [nodePath.join(ROOT, "src/sidecars/git-gate/main.ts")],
      outfile: out,
      bundle: true,
      platform: "node",
      format: "esm",
      logLevel: "warning",
      banner: { js: 'import { createRequire as __c } from "node:module"; const require = __c(import.meta.url);' },
    });
    return out;
  })();
  return bundled;
}

/** git for local work only (it blocks: never against the in-process gate). */
export const gitIn = (cwd: string, args: string[], env?: NodeJS.ProcessEnv) => execFileSync("git", args, { cwd, env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] }).toString();

/** git that talks to the gate: asynchronous, since the gate's server runs in this process. */
export function gitRemote(cwd: string, args: string[], timeoutMs = 60_000): Promise<{ code: number; out: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn("git", args, { cwd, env: { ...process.env, GIT_TERMINAL_PROMPT: "0" }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.stdout.on("data", (b: Buffer) => (out += b.toString("utf8")));
    child.stderr.on("data", (b: Buffer) => {
      out += b.toString("utf8");
      stderr += b.toString("utf8");
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out, stderr });
    });
  });
}

export interface LocalGate {
  url: string;
  port: number;
  upstreamDir: string;
  gateDir: string;
  hooksDir: string;
  /** The env the gate gives its hook (config, log socket, where push lists live). */
  hookEnv: NodeJS.ProcessEnv;
  pushesDir: string;
  /** The hook command the gate runs (replace it to simulate a crash or a hang). */
  setHook(script: string): void;
  decisions(): GitDecision[];
  logLines(): string[];
  upstreamRefs(): Record<string, string>;
  close(): Promise<void>;
}

const POLICY: GitGatePolicy = { push_refs: ["refs/heads/agent/*"], protected: ["refs/heads/main"], allow_force: false, allow_delete: false, max_push_bytes: 5_000_000 };

export async function startLocalGate(dir: string, o: { policy?: Partial<GitGatePolicy>; idleTimeoutMs?: number } = {}): Promise<LocalGate> {
  const hookBundle = await bundle(dir);
  const upstreamDir = nodePath.join(dir, "upstream.git");
  const gateDir = nodePath.join(dir, "gate", "app.git");
  const hooksDir = nodePath.join(dir, "hooks");
  const work = nodePath.join(dir, "seed");
  mkdirSync(hooksDir, { recursive: true });
  mkdirSync(work, { recursive: true });
  gitIn(dir, ["init", "-q", "--bare", "--initial-branch=main", upstreamDir]);
  gitIn(work, ["init", "-q", "--initial-branch=main"]);
  writeFileSync(nodePath.join(work, "README.md"), "hello\n");
  gitIn(work, ["add", "README.md"]);
  gitIn(work, ["-c", "user.name=u", "-c", "user.email=u@test.invalid", "commit", "-qm", "initial"]);
  gitIn(work, ["push", "-q", upstreamDir, "main"]);
  // agent/alias is a symbolic ref to main on the upstream.
  gitIn(upstreamDir, ["symbolic-ref", "refs/heads/agent/alias", "refs/heads/main"]);
  writeFileSync(
    nodePath.join(upstreamDir, "hooks", "pre-receive"),
    '#!/bin/sh\nwhile read old new ref; do case "$ref" in refs/heads/agent/upstream-no*) echo "upstream policy: $ref is not accepted here"; exit 1;; esac; done\n',
  );
  chmodSync(nodePath.join(upstreamDir, "hooks", "pre-receive"), 0o755);

  gitIn(dir, ["init", "-q", "--bare", gateDir]);
  gitIn(gateDir, ["config", "core.hooksPath", hooksDir]);
  gitIn(gateDir, ["symbolic-ref", "HEAD", "refs/heads/main"]);
  gitIn(gateDir, ["fetch", "-q", upstreamDir, "+refs/heads/*:refs/heads/*"]);

  const configFile = nodePath.join(dir, "config.json");
  const policy = { ...POLICY, ...o.policy };
  writeFileSync(configFile, JSON.stringify({ version: 1, port: 9418, upstreams: [{ name: "app", url: upstreamDir, identity_file: "/dev/null", known_hosts_file: "/dev/null", policy }] }));
  const setHook = (script: string) => {
    writeFileSync(nodePath.join(hooksDir, "pre-receive"), script);
    chmodSync(nodePath.join(hooksDir, "pre-receive"), 0o755);
  };
  setHook(`#!/bin/sh\nexec "${process.execPath}" "${hookBundle}" pre-receive\n`);

  const lines: string[] = [];
  const tracker = new HookTracker();
  const socket = nodePath.join(dir, "log.sock");
  const logServer = await listenForHookLogs(socket, (l) => {
    tracker.observe(l);
    lines.push(l);
  });
  const log: EventLog = (event, fields) => lines.push(`${JSON.stringify({ ts: new Date().toISOString(), mode: "git-gate", event, ...fields })}\n`);
  const env = { ...process.env, [CONFIG_ENV]: configFile, [LOG_SOCKET_ENV]: socket, GIT_TERMINAL_PROMPT: "0" };
  const server = await startGitServer({
    port: 0,
    host: "127.0.0.1",
    env,
    log,
    tracker,
    writeRecord: (l) => lines.push(l),
    resolve: (name) => (name === "app" ? { name: "app", dir: gateDir, maxPushBytes: policy.max_push_bytes } : undefined),
    pushesDir: nodePath.join(dir, "pushes"),
    ...(o.idleTimeoutMs ? { idleTimeoutMs: o.idleTimeoutMs } : {}),
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `git://127.0.0.1:${port}/app`,
    port,
    upstreamDir,
    gateDir,
    hooksDir,
    hookEnv: { ...env, [PUSHES_DIR_ENV]: nodePath.join(dir, "pushes") },
    pushesDir: nodePath.join(dir, "pushes"),
    setHook,
    decisions: () => parseGitDecisions(lines),
    logLines: () => [...lines],
    upstreamRefs: () =>
      Object.fromEntries(
        gitIn(upstreamDir, ["for-each-ref", "--format=%(objectname) %(refname)"])
          .split("\n")
          .filter(Boolean)
          .map((l) => l.split(" ").reverse() as [string, string]),
      ),
    close: async () => {
      await server.closeAll();
      logServer.close();
    },
  };
}

export interface RawPushResult {
  /** Everything receive-pack (and the gate) said, sideband text and report lines. */
  text: string;
  advertised: Record<string, string>;
}

/**
 * Push by hand over git://, as a hostile client could: any ref names, raw
 * bytes included, with side-band-64k and report-status. `pack` defaults to an
 * empty pack (the objects already exist in the gate).
 */
export function rawPush(port: number, commands: (adv: Record<string, string>) => Buffer[], o: { pack?: Buffer; host?: string; stallAfterCommands?: boolean } = {}): Promise<RawPushResult> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, o.host ?? "127.0.0.1");
    const reader = new PktReader();
    const advertised: Record<string, string> = {};
    let phase: "advert" | "report" = "advert";
    let text = "";
    const nested = new PktReader();
    sock.on("error", reject);
    sock.on("connect", () => sock.write(encodePkt("git-receive-pack /app\0host=gate\0")));
    sock.on("data", (chunk: Buffer) => {
      reader.push(chunk);
      for (let p = reader.next(); p; p = reader.next()) {
        if (phase === "advert") {
          if (p.packet.kind === "flush") {
            phase = "report";
            const cmds = commands(advertised);
            const caps = "report-status side-band-64k agent=bot-bottle-test";
            const pkts = cmds.map((c, i) => encodePkt(i === 0 ? Buffer.concat([c, Buffer.from(`\0${caps}`)]) : c));
            sock.write(Buffer.concat([...pkts, FLUSH_PKT]));
            if (!o.stallAfterCommands && cmds.some((c) => !/^0{40} /.test(c.subarray(41).toString("latin1")))) sock.write(o.pack ?? emptyPack());
            continue;
          }
          if (p.packet.kind === "data") {
            const line = p.packet.payload.toString("latin1").split("\0")[0]!.trimEnd();
            const [sha, ref] = line.split(" ");
            if (sha && ref) advertised[ref] = sha;
          }
          continue;
        }
        if (p.packet.kind !== "data") continue;
        const band = p.packet.payload[0];
        const body = p.packet.payload.subarray(1);
        if (band === 2 || band === 3) text += body.toString("utf8");
        else if (band === 1) {
          nested.push(Buffer.from(body));
          for (let q = nested.next(); q; q = nested.next()) if (q.packet.kind === "data") text += `${q.packet.payload.toString("utf8")}`;
        }
      }
    });
    sock.on("close", () => resolve({ text, advertised }));
  });
}

/** A pack with no objects: "PACK", version 2, count 0, then its SHA-1. */
export function emptyPack(): Buffer {
  const head = Buffer.from([0x50, 0x41, 0x43, 0x4b, 0, 0, 0, 2, 0, 0, 0, 0]);
  return Buffer.concat([head, createHash("sha1").update(head).digest()]);
}

export const ZERO = "0".repeat(40);
export const cmd = (old: string, next: string, ref: string | Buffer) => Buffer.concat([Buffer.from(`${old} ${next} `), typeof ref === "string" ? Buffer.from(ref) : ref]);
