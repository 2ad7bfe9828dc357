// Writes into the state dir: whole files or nothing (temp + rename).
import { promises as fs } from "node:fs";
import { writeFileAtomic } from "../contracts/atomic.js";

export { writeFileAtomic } from "../contracts/atomic.js";

/** Write the files whose content differs from what is on disk; returns those. */
export async function writeChanged<F extends { path: string; content: string }>(files: readonly F[], mode = 0o600): Promise<F[]> {
  const changed: F[] = [];
  for (const f of files) {
    const current = await fs.readFile(f.path, "utf8").catch(() => undefined);
    if (current === f.content) continue;
    await writeFileAtomic(f.path, f.content, mode);
    changed.push(f);
  }
  return changed;
}
