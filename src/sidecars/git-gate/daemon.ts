// The gate's git:// server (the git daemon protocol: one pkt-line request,
// then upload-pack or receive-pack speaking to the client). Our own rather
// than `git daemon` so the gate sees every push whole: it reads the ref
// updates the agent sent (handing them to the hook, which must judge those
// exact names), runs receive-pack with git's own checks on, reads git's
// report, and records every update the hook did not (git refused the
// objects or the size, the hook died, the push timed out), telling the agent
// why over the sideband. Each connection has timeouts; the whole process
// group of a stopped push (receive-pack and its hook) is ended.
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, type Server, type Socket } from "node:net";
import { removeCommands, PUSH_ID_ENV, PUSHES_DIR, PUSHES_DIR_ENV, writeCommands, type WireCommand } from "./commands.js";
import { formatEvent, type EventLog } from "./log.js";
import { agentNotice, unrecordedOutcome, type ReportStatus } from "./outcome.js";
import { chomp, encodePkt, PktLineError, PktReader, type Packet } from "./pktline.js";
import { pushFields, UPSTREAM_PUSH_EVENT, type PushRecord } from "./records.js";

export interface RepoTarget {
  name: string;
  dir: string;
  maxPushBytes: number;
}

export interface GitServerOptions {
  port: number;
  host?: string;
  env: NodeJS.ProcessEnv;
  log: EventLog;
  /** Where decision records go (the gate's stdout). */
  writeRecord: (line: string) => void;
  tracker: HookTracker;
  /** The repository for a request's name, with its current policy; undefined when there is none. */
  resolve: (name: string) => RepoTarget | undefined;
  maxConnections?: number;
  /** The request line must arrive within this. */
  initTimeoutMs?: number;
  /** No byte either way for this long ends the connection. */
  idleTimeoutMs?: number;
  /** No connection lasts longer than this. */
  maxConnectionMs?: number;
  pushesDir?: string;
}

const envMs = (name: string, fallback: number) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};

/**
 * Which pushes the hook recorded (by the 1-based index of each update) and
 * which it began forwarding upstream, learned from the lines it sends to the
 * server's log socket.
 */
export class HookTracker {
  private readonly recorded = new Map<string, Set<number>>();
  private readonly started = new Set<string>();

  observe(line: string): void {
    if (!line.includes('"push":')) return;
    let o: { event?: unknown; push?: unknown; index?: unknown };
    try {
      o = JSON.parse(line) as typeof o;
    } catch {
      return;
    }
    if (typeof o.push !== "string") return;
    if (o.event === "push" && typeof o.index === "number") {
      let s = this.recorded.get(o.push);
      if (!s) {
        s = new Set();
        this.recorded.set(o.push, s);
      }
      s.add(o.index);
    } else if (o.event === UPSTREAM_PUSH_EVENT) this.started.add(o.push);
  }

  recordedFor(push: string): Set<number> {
    return this.recorded.get(push) ?? new Set();
  }

  upstreamStarted(push: string): boolean {
    return this.started.has(push);
  }

  forget(push: string): void {
    this.recorded.delete(push);
    this.started.delete(push);
  }
}

export type GitRequest = { service: "upload-pack" | "receive-pack"; path: string; protocol?: string };

/** The daemon request: "git-upload-pack /path\0host=h\0[\0version=2\0...]". */
export function parseRequest(payload: Buffer): GitRequest | { error: string } {
  const parts = chomp(payload).toString("latin1").split("\0");
  const m = /^git-(upload-pack|receive-pack) (\S+)$/.exec(parts[0] ?? "");
  if (!m) return { error: "expected git-upload-pack or git-receive-pack and a path" };
  // Extra parameters follow an empty field; git daemon passes them on as GIT_PROTOCOL.
  const empty = parts.indexOf("", 1);
  const extra = empty > 0 ? parts.slice(empty + 1).filter((p) => /^[A-Za-z0-9._-]+=[A-Za-z0-9._-]+$/.test(p)) : [];
  return { service: m[1] as GitRequest["service"], path: m[2]!, ...(extra.length ? { protocol: extra.join(":") } : {}) };
}

/** The upstream name a request path names: /app, /app.git, with or without a trailing slash. */
export function repoCandidates(path: string): string[] {
  const p = path.replace(/^\/+/, "").replace(/\/+$/, "");
  if (!/^[a-z0-9][a-z0-9._-]{0,66}$/.test(p)) return [];
  return p.endsWith(".git") ? [p, p.slice(0, -4)] : [p];
}

const HEX = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

/** One line of the command list: an update, a shallow line, or undefined (not allowed here). */
export function parseCommandLine(line: Buffer): WireCommand | "shallow" | undefined {
  const s = line.subarray(0, 8).toString("latin1");
  if (s === "shallow ") return HEX.test(line.subarray(8).toString("latin1")) ? "shallow" : undefined;
  const sp1 = line.indexOf(0x20);
  if (sp1 !== 40 && sp1 !== 64) return undefined;
  const old = line.subarray(0, sp1).toString("latin1");
  const next = line.subarray(sp1 + 1, 2 * sp1 + 1).toString("latin1");
  if (!HEX.test(old) || !HEX.test(next) || line[2 * sp1 + 1] !== 0x20 || line.length <= 2 * sp1 + 2) return undefined;
  return { old, new: next, raw: Buffer.from(line.subarray(2 * sp1 + 2)) };
}

/** receive-pack's report, read from its output after the ref advertisement (sideband or not). */
export class ReportReader {
  readonly report: ReportStatus = { refs: [] };
  /** Text git sent on the sideband's message channels (bounded: the last 16 KiB). */
  messages = "";
  private readonly nested = new PktReader();
  private done = false;

  /** The report ended (its flush was read). */
  get complete(): boolean {
    return this.done;
  }

  /** `sideband`: whether the client asked for one (known once its commands arrived, after the advertisement). */
  constructor(private readonly usesSideband: () => boolean) {}

  private get sideband(): boolean {
    return this.usesSideband();
  }

  /** Feed one top-level packet of the response; returns report lines it completed. */
  feed(packet: Packet): string[] {
    if (packet.kind !== "data") {
      return this.sideband ? [] : this.line(packet);
    }
    if (!this.sideband) return this.line(packet);
    const band = packet.payload[0];
    const body = packet.payload.subarray(1);
    if (band === 1) {
      if (!body.length) return [];
      this.nested.push(Buffer.from(body));
      const out: string[] = [];
      for (let p = this.nested.next(); p; p = this.nested.next()) out.push(...this.line(p.packet));
      return out;
    }
    if (band === 2 || band === 3) {
      this.messages = (this.messages + body.toString("utf8").replace(/\r/g, "\n")).slice(-16_384);
    }
    return [];
  }

  private line(packet: Packet): string[] {
    if (this.done) return [];
    if (packet.kind === "flush") {
      this.done = true;
      return [];
    }
    if (packet.kind !== "data") return [];
    const text = chomp(packet.payload).toString("utf8");
    if (text.startsWith("unpack ")) this.report.unpack = text.slice(7);
    else if (text.startsWith("ok ")) this.report.refs.push({ ref: text.slice(3), ok: true });
    else if (text.startsWith("ng ")) {
      const rest = text.slice(3);
      const sp = rest.indexOf(" ");
      this.report.refs.push(sp < 0 ? { ref: rest, ok: false } : { ref: rest.slice(0, sp), ok: false, reason: rest.slice(sp + 1) });
    }
    return [text];
  }
}

let counter = 0;
const newPushId = () => `${Date.now().toString(36)}-${(++counter).toString(36)}-${process.pid.toString(36)}`;

/** Limits on the agent's list of ref updates (git itself sends far less). */
const MAX_COMMANDS = 10_000;
const MAX_COMMAND_BYTES = 8 * 1024 * 1024;

/** The server, plus a way to end it now: in-flight pushes are stopped (and recorded), connections closed. */
export interface GitServer extends Server {
  closeAll(): Promise<void>;
}

export function startGitServer(o: GitServerOptions): Promise<GitServer> {
  const maxConnections = o.maxConnections ?? 64;
  const initTimeoutMs = o.initTimeoutMs ?? envMs("GIT_GATE_INIT_TIMEOUT_MS", 10_000);
  const idleTimeoutMs = o.idleTimeoutMs ?? envMs("GIT_GATE_IDLE_TIMEOUT_MS", 600_000);
  const maxConnectionMs = o.maxConnectionMs ?? envMs("GIT_GATE_MAX_CONNECTION_MS", 3_600_000);
  let active = 0;
  const sockets = new Set<Socket>();
  const children = new Set<ChildProcess>();

  const server = createServer((sock) => {
    active++;
    sock.once("close", () => active--);
    sockets.add(sock);
    sock.once("close", () => sockets.delete(sock));
    sock.on("error", () => {});
    if (active > maxConnections) {
      sock.end(encodePkt("ERR the gate has too many connections; retry shortly\n"));
      return;
    }
    const reader = new PktReader();
    const init = setTimeout(() => sock.destroy(), initTimeoutMs);
    const onData = (chunk: Buffer) => {
      reader.push(chunk);
      let first: ReturnType<PktReader["next"]>;
      try {
        first = reader.next();
      } catch {
        first = undefined;
        sock.destroy();
        return;
      }
      if (!first) {
        if (reader.pendingLength > 70_000) sock.destroy();
        return;
      }
      clearTimeout(init);
      sock.off("data", onData);
      sock.pause();
      const req = first.packet.kind === "data" ? parseRequest(first.packet.payload) : { error: "expected a request line" };
      if ("error" in req) {
        sock.end(encodePkt(`ERR ${req.error}\n`));
        return;
      }
      const target = repoCandidates(req.path)
        .map((n) => o.resolve(n))
        .find((t) => t !== undefined);
      if (!target) {
        sock.end(encodePkt(`ERR no such repository: ${JSON.stringify(req.path).slice(1, -1).slice(0, 200)}\n`));
        return;
      }
      const leftover = Buffer.from(reader.pending);
      if (req.service === "upload-pack") serveUploadPack(sock, target, req, leftover);
      else serveReceivePack(sock, target, req, leftover);
    };
    sock.on("data", onData);
  });

  function spawnGit(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
    // Its own process group, so a stopped push ends with its hook and their children.
    const child = spawn("git", args, { env, stdio: ["pipe", "pipe", "pipe"], detached: true });
    children.add(child);
    child.once("close", () => children.delete(child));
    return child;
  }

  function killGroup(child: ChildProcess): void {
    if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {
      /* already gone */
    }
    // Whatever ignored SIGTERM, while the group's leader still runs (once it
    // is reaped its number may be reused).
    setTimeout(() => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        /* already gone */
      }
    }, 5_000).unref();
  }

  /** Idle and total deadlines for one connection; `touch` on every byte. */
  function deadlines(onExpire: (why: string) => void) {
    let idle: NodeJS.Timeout | undefined;
    const touch = () => {
      if (idle) idle.refresh();
    };
    idle = setTimeout(() => onExpire(`no data moved for ${Math.round(idleTimeoutMs / 1000)} s`), idleTimeoutMs);
    const total = setTimeout(() => onExpire(`the connection was open for ${Math.round(maxConnectionMs / 1000)} s, the gate's limit`), maxConnectionMs);
    return {
      touch,
      clear: () => {
        clearTimeout(idle);
        clearTimeout(total);
      },
    };
  }

  function serveUploadPack(sock: Socket, target: RepoTarget, req: GitRequest, leftover: Buffer): void {
    const env = { ...o.env, ...(req.protocol ? { GIT_PROTOCOL: req.protocol } : {}) };
    const child = spawnGit(["upload-pack", "--strict", `--timeout=${Math.ceil(idleTimeoutMs / 1000)}`, target.dir], env);
    const d = deadlines((why) => {
      o.log("connection_timeout", { level: "warn", service: "upload-pack", upstream: target.name, why });
      killGroup(child);
      sock.destroy();
    });
    child.stderr!.on("data", () => d.touch());
    child.on("error", (err) => o.log("upload_pack_error", { level: "error", upstream: target.name, msg: err.message }));
    child.stdin!.on("error", () => {});
    if (leftover.length) child.stdin!.write(leftover);
    sock.on("data", d.touch);
    child.stdout!.on("data", d.touch);
    sock.pipe(child.stdin!);
    child.stdout!.pipe(sock);
    sock.resume();
    sock.once("close", () => {
      child.stdin!.destroy();
      // A clone the client abandoned: nothing to keep.
      setTimeout(() => killGroup(child), 1_000).unref();
    });
    child.once("close", () => {
      d.clear();
      sock.end();
    });
  }

  function serveReceivePack(sock: Socket, target: RepoTarget, req: GitRequest, leftover: Buffer): void {
    const push = newPushId();
    const pushesDir = o.pushesDir ?? PUSHES_DIR;
    const env = { ...o.env, ...(req.protocol ? { GIT_PROTOCOL: req.protocol } : {}), [PUSH_ID_ENV]: push, [PUSHES_DIR_ENV]: pushesDir };
    // Git's own checks, with the policy as it is now: objects are fsck'd as
    // they arrive and an oversize pack is cut off while it streams.
    const child = spawnGit(["-c", "receive.fsckObjects=true", "-c", `receive.maxInputSize=${target.maxPushBytes}`, "receive-pack", target.dir], env);
    const commands: WireCommand[] = [];
    const held: Buffer[] = [];
    let heldBytes = 0;
    let phase: "commands" | "pack" | "finished" = "commands";
    let sideband = false;
    let bytes = 0;
    let timedOut: string | undefined;
    let protocolError: string | undefined;
    let internalError: string | undefined;
    const cmdReader = new PktReader();
    const outReader = new PktReader();
    let rawOutput = false;
    let stderrText = "";
    let advertDone = false;
    let report: ReportReader | undefined;
    let noticeSent = false;
    const t0 = Date.now();

    const d = deadlines((why) => {
      timedOut = `the gate stopped the push: ${why}`;
      o.log("connection_timeout", { level: "warn", service: "receive-pack", upstream: target.name, push, why });
      notify(`bot-bottle git-gate: push to "${target.name}" stopped: ${why} (recorded as rule "timeout")`);
      killGroup(child);
    });

    /** Tell the agent something on the sideband (only when it asked for one, and between packets). */
    const notify = (text: string) => {
      if (!sideband || !advertDone || outReader.pendingLength > 0 || sock.destroyed) return;
      sock.write(encodePkt(Buffer.concat([Buffer.from([2]), Buffer.from(`${text}\n`, "utf8")])));
    };

    const toChild = (b: Buffer) => {
      if (phase === "finished" || !b.length) return;
      if (!child.stdin!.write(b)) {
        sock.pause();
        child.stdin!.once("drain", () => sock.resume());
      }
    };

    const failProtocol = (why: string) => {
      protocolError = `the push was malformed: ${why}`;
      o.log("protocol_error", { level: "warn", upstream: target.name, push, why });
      killGroup(child);
      sock.destroy();
    };

    const onClientData = (chunk: Buffer) => {
      d.touch();
      if (phase === "finished") return;
      if (phase === "pack") {
        bytes += chunk.length;
        toChild(chunk);
        return;
      }
      cmdReader.push(chunk);
      for (;;) {
        let next: ReturnType<PktReader["next"]>;
        try {
          next = cmdReader.next();
        } catch (err) {
          failProtocol(err instanceof PktLineError ? err.message : String(err));
          return;
        }
        if (!next) break;
        held.push(next.raw);
        heldBytes += next.raw.length;
        if (next.packet.kind === "flush") {
          // The command list is complete: hand it to the hook, then let git have it all.
          if (commands.length) {
            try {
              writeCommands(push, commands, pushesDir);
            } catch (err) {
              o.log("push_list_failed", { level: "error", upstream: target.name, push, msg: err instanceof Error ? err.message : String(err) });
              return failProtocol("the gate could not keep the list of ref updates");
            }
          }
          phase = "pack";
          const rest = Buffer.from(cmdReader.pending);
          for (const h of held) toChild(h);
          bytes += rest.length;
          toChild(rest);
          return;
        }
        if (next.packet.kind !== "data") return failProtocol("unexpected packet in the command list");
        let line = chomp(next.packet.payload);
        if (!commands.length) {
          const nul = line.indexOf(0);
          if (nul >= 0) {
            const caps = line
              .subarray(nul + 1)
              .toString("latin1")
              .split(" ");
            sideband = caps.includes("side-band-64k") || caps.includes("side-band");
            line = line.subarray(0, nul);
          }
        }
        const c = parseCommandLine(line);
        if (!c) return failProtocol(`line ${commands.length + 1} of the command list is not "<old> <new> <ref>"`);
        if (c !== "shallow") commands.push(c);
        if (commands.length > MAX_COMMANDS || heldBytes > MAX_COMMAND_BYTES) return failProtocol("too many ref updates in one push");
      }
    };

    const onGitData = (chunk: Buffer) => {
      d.touch();
      if (sock.destroyed) return;
      if (rawOutput) {
        sock.write(chunk);
        return;
      }
      outReader.push(chunk);
      const out: Buffer[] = [];
      for (;;) {
        let next: ReturnType<PktReader["next"]>;
        try {
          next = outReader.next();
        } catch {
          // Not pkt-lines (never from receive-pack): pass everything on untouched.
          rawOutput = true;
          out.push(outReader.takePending());
          break;
        }
        if (!next) break;
        if (!advertDone) {
          if (next.packet.kind === "flush") {
            advertDone = true;
            report = new ReportReader(() => sideband);
          }
          out.push(next.raw);
          continue;
        }
        const before = report!.report.refs.length;
        const hadUnpack = report!.report.unpack !== undefined;
        const wasComplete = report!.complete;
        report!.feed(next.packet);
        const notice = noticeFor(hadUnpack, before);
        if (notice) out.push(encodePkt(Buffer.concat([Buffer.from([2]), Buffer.from(`${notice}\n`, "utf8")])));
        // Record what the hook did not before the agent reads the end of git's report.
        if (!wasComplete && report!.complete) writeRecords({ code: null, signal: null });
        out.push(next.raw);
      }
      if (!out.length) return;
      if (!sock.write(Buffer.concat(out))) {
        child.stdout!.pause();
        sock.once("drain", () => child.stdout!.resume());
      }
    };

    /** When the report shows a refusal the hook did not explain, say it before git's own lines. */
    const noticeFor = (hadUnpack: boolean, refsBefore: number): string | undefined => {
      if (noticeSent || !sideband || !report) return undefined;
      const r = report.report;
      const unpackFailed = !hadUnpack && r.unpack !== undefined && r.unpack !== "ok";
      const hookDeclined = r.refs.slice(refsBefore).some((x) => !x.ok && /hook declined/.test(x.reason ?? ""));
      if (!unpackFailed && !hookDeclined) return undefined;
      const records = unrecordedOutcome(observation({ code: null, signal: null })).filter((x) => x.verdict === "refused" && (unpackFailed || x.rule === "hook_error"));
      const text = agentNotice(target.name, records);
      if (text) noticeSent = true;
      return text;
    };

    const written = new Set<number>();
    const writeRecords = (exit: { code: number | null; signal: string | null }) => {
      for (const r of unrecordedOutcome(observation(exit))) {
        if (r.index === undefined || written.has(r.index)) continue;
        written.add(r.index);
        o.writeRecord(formatEvent("push", pushFields({ ...r, ms: { total: Date.now() - t0 } } satisfies PushRecord)));
      }
    };

    const observation = (exit: { code: number | null; signal: string | null }) => ({
      push,
      upstream: target.name,
      commands,
      recorded: o.tracker.recordedFor(push),
      report: report?.report ?? { refs: [] },
      messages: `${report?.messages ?? ""}\n${stderrText}`.trim(),
      ...(timedOut ? { timedOut } : {}),
      ...(protocolError ? { protocolError } : {}),
      ...(internalError ? { internalError } : {}),
      upstreamStarted: o.tracker.upstreamStarted(push),
      exit,
      maxPushBytes: target.maxPushBytes,
      bytes,
    });

    // A bug in the gate's own bookkeeping must end this push, never the
    // server: every handler below is guarded.
    const guard =
      <A extends unknown[]>(what: string, fn: (...a: A) => void) =>
      (...a: A) => {
        try {
          fn(...a);
        } catch (err) {
          o.log("internal_error", { level: "error", upstream: target.name, push, where: what, msg: err instanceof Error ? err.message : String(err) });
          internalError ??= `the gate failed while handling the push (${what})`;
          killGroup(child);
          sock.destroy();
        }
      };
    child.stdout!.on("data", guard("git output", onGitData));
    child.stderr!.on("data", (b: Buffer) => {
      d.touch();
      stderrText = (stderrText + b.toString("utf8")).slice(-16_384);
    });
    child.on("error", (err) => o.log("receive_pack_error", { level: "error", upstream: target.name, push, msg: err.message }));
    child.stdin!.on("error", () => {});
    sock.on("data", guard("client data", onClientData));
    sock.once("close", () => {
      // The agent went away: let git see the end of its input and finish
      // (the deadlines still bound it).
      if (phase !== "finished") child.stdin!.end();
    });
    child.once("close", (code, signal) => {
      d.clear();
      try {
        finish(code, signal);
      } catch (err) {
        o.log("internal_error", { level: "error", upstream: target.name, push, where: "finish", msg: err instanceof Error ? err.message : String(err) });
        // Still one record per update, with nothing the gate would have to scan.
        const recorded = o.tracker.recordedFor(push);
        commands.forEach((c, i) => {
          if (recorded.has(i + 1) || written.has(i + 1)) return;
          const r: PushRecord = {
            push,
            upstream: target.name,
            ref: `(ref #${i + 1} of this push: name withheld, the gate failed while recording it)`,
            index: i + 1,
            old: c.old,
            new: c.new,
            verdict: "refused",
            rule: "hook_error",
            reason: "the gate failed while recording this push",
            upstream_result: o.tracker.upstreamStarted(push) ? "unknown" : "not-attempted",
          };
          o.writeRecord(formatEvent("push", pushFields(r)));
        });
      }
      o.tracker.forget(push);
      removeCommands(push, pushesDir);
      // Let the agent read what git said, then close; whatever it still sends is discarded.
      sock.end();
      setTimeout(() => sock.destroy(), 2_000).unref();
    });
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      const wasPhase = phase;
      phase = "finished";
      if (wasPhase === "commands" && !commands.length && !timedOut && !protocolError && !internalError) {
        // Nothing was pushed (an up-to-date push or a probe): no decision to record.
      } else writeRecords({ code, signal });
    };
    if (leftover.length) guard("client data", onClientData)(leftover);
    sock.resume();
  }

  const closeAll = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const c of children) killGroup(c);
      // Give stopped pushes a moment to be recorded, then drop what is left.
      setTimeout(() => {
        for (const sock of sockets) sock.destroy();
      }, 500).unref();
    });

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, o.host ?? "0.0.0.0", () => {
      server.off("error", reject);
      resolve(Object.assign(server, { closeAll }));
    });
  });
}
