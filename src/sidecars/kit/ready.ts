// Readiness without healthchecks: once a sidecar serves, it writes one file
// into its own ready dir (a read-write bind only it has, MOUNTS.ready). The
// host waits on that file while it starts the bottle and never polls a
// running bottle afterwards; a sidecar that dies later shows in container
// state. Temp + rename, so the host never reads half a file. Outside a
// bottle (tests, a bare `node proxy.js`) the dir does not exist: nothing to do.
import { existsSync, renameSync, writeFileSync } from "node:fs";
import { FILES, MOUNTS } from "../../contracts/mounts.js";

/** What a sidecar says in its ready file; proxies also count config reloads (applied and refused). */
export interface ReadyCounters {
  reloads?: number;
  refused?: number;
}

export function signalReady(counters: ReadyCounters = {}, dir: string = MOUNTS.ready): boolean {
  if (!existsSync(dir)) return false;
  const tmp = `${dir}/.${FILES.ready}.${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify({ pid: process.pid, at: new Date().toISOString(), ...counters })}\n`, { mode: 0o644 });
  renameSync(tmp, `${dir}/${FILES.ready}`);
  return true;
}
