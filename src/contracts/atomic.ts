// The one atomic-write helper: write a temp file in the same directory, then
// rename over the target. Readers see the old file or the new one, never half
// of either; a crash leaves at most a stray `.tmp-*` file nobody reads.
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import nodePath from "node:path";

export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const tmp = nodePath.join(nodePath.dirname(path), `.tmp-${nodePath.basename(path)}-${randomBytes(4).toString("hex")}`);
  const fh = await fs.open(tmp, "wx", mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    // open() applies the umask; make the mode exactly what was asked.
    await fs.chmod(tmp, mode);
    await fs.rename(tmp, path);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}
