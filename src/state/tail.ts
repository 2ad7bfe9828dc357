// Reading the end of a saved log without reading the whole file.
import { promises as fs } from "node:fs";

/** A filtered tail scans at most this much of the file, from the end. */
export const MAX_SCAN_BYTES = 256 * 1024 * 1024;

export interface Tail {
  lines: string[];
  /** True when the scan stopped at MAX_SCAN_BYTES before finding `n` lines. */
  truncated: boolean;
}

/**
 * The last `n` lines of a file (that pass `filter`), read backwards in
 * chunks: never the whole file. Lines are split on raw bytes and decoded
 * whole, so a multi-byte character across a chunk edge stays intact.
 */
export async function tailFile(file: string, n: number, filter?: (line: string) => boolean): Promise<Tail> {
  const fh = await fs.open(file, "r");
  try {
    const { size } = await fh.stat();
    const lines: string[] = [];
    let pos = size;
    let carry: Buffer = Buffer.alloc(0);
    let first = true;
    const take = (raw: Buffer) => {
      const line = raw.toString("utf8");
      if (first) {
        first = false;
        if (line === "") return; // the file's trailing newline
      }
      if (!filter || filter(line)) lines.push(line);
    };
    while (pos > 0 && lines.length < n && size - pos < MAX_SCAN_BYTES) {
      const len = Math.min(64 * 1024, pos);
      pos -= len;
      const chunk = Buffer.alloc(len);
      await fh.read(chunk, 0, len, pos);
      let buf = carry.length ? Buffer.concat([chunk, carry]) : chunk;
      for (let nl = buf.lastIndexOf(0x0a); nl >= 0 && lines.length < n; nl = buf.lastIndexOf(0x0a)) {
        take(buf.subarray(nl + 1));
        buf = buf.subarray(0, nl);
      }
      carry = Buffer.from(buf);
    }
    if (pos === 0 && lines.length < n && (carry.length || !first)) take(carry);
    return { lines: lines.reverse(), truncated: pos > 0 && lines.length < n };
  } finally {
    await fh.close();
  }
}
