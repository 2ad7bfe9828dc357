// Child processes for the bench: start, wait until a port answers, read peak
// RSS from /proc, stop by pid (the bench only ever signals what it started).
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync, readSync, readdirSync, fstatSync } from "node:fs";
import { connect } from "node:net";

export interface Started {
  name: string;
  child: ChildProcess;
  output: () => string;
}

/** The last `max` bytes of a file (a process's log, for error messages). */
function tailOf(file: string, max = 20_000): string {
  try {
    const fd = openSync(file, "r");
    try {
      const size = fstatSync(fd).size;
      const buf = Buffer.alloc(Math.min(size, max));
      readSync(fd, buf, 0, buf.length, size - buf.length);
      return buf.toString();
    } finally {
      closeSync(fd);
    }
  } catch {
    return "";
  }
}

/**
 * Start a child. With `logFile`, its stdout and stderr go straight to that
 * file, as squid writes its access log: a proxy under test must not log
 * through a pipe into this process, which is also the load generator (every
 * line would cost the client side CPU and skew the comparison).
 */
export function start(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}, logFile?: string): Started {
  if (logFile) {
    const fd = openSync(logFile, "a");
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ["ignore", fd, fd] });
    closeSync(fd);
    return { name, child, output: () => tailOf(logFile) };
  }
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const keep = (c: Buffer) => {
    out = (out + c.toString()).slice(-20_000);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  return { name, child, output: () => out };
}

export async function waitForPort(port: number, p: Started, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (p.child.exitCode !== null) throw new Error(`${p.name} exited (${p.child.exitCode}): ${p.output().slice(-2000)}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: "127.0.0.1", port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${p.name} did not listen on ${port}: ${p.output().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The pid and its descendants (squid forks workers). */
function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const ppid = Number(/\nPPid:\s+(\d+)/.exec(readFileSync(`/proc/${d}/status`, "utf8"))?.[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
    } catch {
      // exited meanwhile
    }
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]!) ?? []));
  return out;
}

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** CPU time (user + system) used so far by the process tree, in ms. */
export function cpuMs(pid: number): number {
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
      const f = readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1]!.split(" ");
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // exited meanwhile
    }
  }
  return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** Peak resident set (VmHWM) in MiB, summed over the process tree. */
export function peakRssMiB(pid: number): number {
  let kb = 0;
  for (const p of processTree(pid)) {
    try {
      kb += Number(/\nVmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, "utf8"))?.[1] ?? 0);
    } catch {
      // exited meanwhile
    }
  }
  return kb / 1024;
}

export async function stop(p: Started): Promise<void> {
  if (p.child.exitCode !== null || p.child.pid === undefined) return;
  const exited = new Promise<void>((r) => p.child.once("exit", () => r()));
  p.child.kill("SIGTERM");
  const timer = setTimeout(() => p.child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}
