// Per-slug lock: an exclusive-create file in the state root holding our pid.
// A second operation on the same slug fails at once (or waits, if asked); a
// lock whose process is gone is stale and may be taken over (cleanup removes
// such locks too).
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import nodePath from "node:path";
import { BottleError } from "../errors.js";
import { locksDir, type BottleLayout } from "./layout.js";

export interface Lock {
  release(): Promise<void>;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export async function lockHolder(file: string): Promise<number | undefined> {
  const pid = Number((await fs.readFile(file, "utf8").catch(() => "")).trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** The bottle's lock; with `waitMs`, wait up to that long for another holder to finish. */
export async function acquireLock(l: BottleLayout, o: { waitMs?: number } = {}): Promise<Lock> {
  const deadline = Date.now() + (o.waitMs ?? 0);
  for (;;) {
    try {
      return await tryLock(l);
    } catch (err) {
      if (!(err instanceof BottleError && err.code === "conflict") || Date.now() >= deadline) throw err;
      await new Promise((res) => setTimeout(res, 20 + Math.random() * 30));
    }
  }
}

async function tryLock(l: BottleLayout): Promise<Lock> {
  const file = l.lockFile;
  await fs.mkdir(nodePath.dirname(file), { recursive: true, mode: 0o700 });
  // The pid is written first and the lock appears by link(2), which fails if it
  // exists: a lock is never visible without its holder's pid, so a racing
  // acquirer cannot read it empty, take it for stale and remove it.
  const tmp = nodePath.join(nodePath.dirname(file), `.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  await fs.writeFile(tmp, String(process.pid), { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await fs.link(tmp, file);
        return { release: () => fs.rm(file, { force: true }) };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
        const holder = await lockHolder(file);
        if (holder !== undefined && pidAlive(holder)) {
          throw new BottleError("conflict", `bottle "${l.slug}" is busy: another operation (pid ${holder}) holds its lock`, "Wait for it to finish, or pick another slug.");
        }
        await fs.rm(file, { force: true }); // stale: its process is gone
      }
    }
  } finally {
    await fs.rm(tmp, { force: true });
  }
  throw new BottleError("conflict", `could not lock bottle "${l.slug}"`);
}

/** Remove locks whose process is gone; returns their slugs. */
export async function removeStaleLocks(root: string): Promise<string[]> {
  const dir = locksDir(root);
  const removed: string[] = [];
  for (const f of await fs.readdir(dir).catch(() => [] as string[])) {
    if (!f.endsWith(".lock")) continue; // a lock being made (.tmp-*)
    const file = nodePath.join(dir, f);
    const pid = await lockHolder(file);
    if (pid === undefined || !pidAlive(pid)) {
      await fs.rm(file, { force: true });
      removed.push(f.replace(/\.lock$/, ""));
    }
  }
  return removed;
}
