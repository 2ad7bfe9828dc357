// Per-slug lock: an exclusive-create file in the state root holding our pid.
// A second start of the same slug fails at once; a lock whose process is gone
// is stale and may be taken over (cleanup removes such locks too).
import { promises as fs } from "node:fs";
import nodePath from "node:path";
import { BottleError } from "../errors.js";

export function lockPath(stateRoot: string, slug: string): string {
  return nodePath.join(stateRoot, ".locks", `${slug}.lock`);
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

export async function acquireLock(stateRoot: string, slug: string): Promise<{ release: () => Promise<void> }> {
  const file = lockPath(stateRoot, slug);
  await fs.mkdir(nodePath.dirname(file), { recursive: true, mode: 0o700 });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await fs.open(file, "wx", 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      return { release: () => fs.rm(file, { force: true }) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const holder = await lockHolder(file);
      if (holder !== undefined && pidAlive(holder)) {
        throw new BottleError("conflict", `bottle "${slug}" is busy: another operation (pid ${holder}) holds its lock`, "Wait for it to finish, or pick another slug.");
      }
      await fs.rm(file, { force: true }); // stale: its process is gone
    }
  }
  throw new BottleError("conflict", `could not lock bottle "${slug}"`);
}
