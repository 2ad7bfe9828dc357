// Secret scan of what a push adds: every new blob (and commit/tag message),
// with the firewall's scanner (one scanner, one rule set: shapes, encodings,
// look-alikes). Objects are streamed through it window by window, so a blob
// of any size costs bounded memory; consecutive blobs are also scanned
// across their boundary (a token split over two files). Findings name the
// file and the kind of secret, never the secret.
import { isUtf8 } from "node:buffer";
import { spawn } from "node:child_process";
import { defaultScanner, findSecrets, UNDECODABLE_RULE, type ByteScan } from "../../security/secrets.js";
import { git } from "./git.js";

/** How much of each blob's start and end is kept to scan across the boundary with its neighbour. */
const EDGE_BYTES = 4096;
/**
 * Text objects up to this size are scanned in batches (one scanner pass
 * over many objects joined, which also covers every boundary between
 * neighbours); a scan per object costs ~20 µs of set-up, and a push of a
 * thousand commits carries thousands of small objects.
 */
const BATCH_OBJECT_BYTES = 64 * 1024;
const BATCH_BYTES = 256 * 1024;

export interface ScanFinding {
  /** Object id (short) and kind of the object holding the secret. */
  object: string;
  type: string;
  /** Path of the blob in the pushed tree, when it has one and the path itself is clean. */
  path?: string;
  rule: string;
  description: string;
  encoding: string;
}

export interface ScanResult {
  objects: number;
  bytes: number;
  findings: ScanFinding[];
  /** Set when something could not be scanned: the push is refused. */
  unscannable?: string;
}

/**
 * What this push adds and what can hold a secret: the blobs (with their
 * paths), commits and tags reachable from `tips` that no existing ref
 * reaches. Trees are skipped: they hold names and ids, and reading them
 * would more than double the bytes to scan.
 */
export async function newObjects(tips: string[], env: NodeJS.ProcessEnv): Promise<Map<string, string | undefined>> {
  const objects = new Map<string, string | undefined>();
  if (!tips.length) return objects;
  const input = `${tips.join("\n")}\n`;
  const [blobs, commits] = await Promise.all([
    git(["rev-list", "--objects", "--filter=object:type=blob", "--stdin", "--not", "--all"], { env, input }),
    git(["rev-list", "--stdin", "--not", "--all"], { env, input }),
  ]);
  for (const r of [blobs, commits]) if (r.code !== 0) throw new Error(`git rev-list failed: ${r.stderr.trim().split("\n").pop()}`);
  for (const line of `${blobs.stdout}\n${commits.stdout}`.split("\n")) {
    if (!line) continue;
    const sp = line.indexOf(" ");
    if (sp < 0) {
      if (!objects.has(line)) objects.set(line, undefined);
    } else objects.set(line.slice(0, sp), line.slice(sp + 1));
  }
  // A pushed annotated tag is a tip of its own (and carries a message).
  for (const t of tips) if (!objects.has(t)) objects.set(t, undefined);
  return objects;
}

/** Stream the objects through `git cat-file --batch` and scan blobs, commits and tags as they arrive. */
export function scanObjects(objects: Map<string, string | undefined>, env: NodeJS.ProcessEnv): Promise<ScanResult> {
  const result: ScanResult = { objects: 0, bytes: 0, findings: [] };
  if (!objects.size) return Promise.resolve(result);
  const scanner = defaultScanner();
  const seen = new Set<string>();
  const cleanPath = (sha: string) => {
    const p = objects.get(sha);
    return p && !findSecrets(p).length ? p : undefined;
  };
  const record = (object: string, type: string, path: string | undefined, findings: ReturnType<ByteScan["end"]>) => {
    if (!findings.length) return;
    for (const f of findings) {
      if (f.rule === UNDECODABLE_RULE) {
        result.unscannable ??= `${type} ${object}${path ? ` (${path})` : ""} holds ${f.description}`;
        continue;
      }
      const key = `${object}/${f.rule}`;
      if (seen.has(key)) continue;
      seen.add(key);
      result.findings.push({ object, type, ...(path ? { path } : {}), rule: f.rule, description: f.description, encoding: f.encoding });
    }
  };

  return new Promise((resolve, reject) => {
    const child = spawn("git", ["cat-file", "--batch"], { env, stdio: ["pipe", "pipe", "pipe"] });
    // The object being received. Small ones are kept whole (`parts`) for a
    // batched pass; larger ones stream through `scan`, keeping their edges.
    let cur: { sha: string; type: string; left: number; scanned: boolean; parts: Buffer[] | undefined; scan: ByteScan | undefined; head: Buffer[]; headLen: number; tail: Buffer } | undefined;
    let header = Buffer.alloc(0);
    let awaitingNewline = false;
    let prevBlob: { sha: string; tail: Buffer } | undefined;
    let stderr = "";
    // Small text objects waiting for one batched pass, per kind (blobs are
    // joined with blobs, commit and tag messages with each other).
    const batches = new Map<string, { objects: Array<{ sha: string; type: string; bytes: Buffer }>; size: number }>();

    /** Across the boundary of two neighbouring blobs: the first's end joined to the second's start. */
    const scanBoundary = (prev: { sha: string; tail: Buffer }, sha: string, head: Buffer) => {
      if (!prev.tail.length || !head.length) return;
      const joined = scanner.scanPieces([prev.tail.toString("latin1"), head.toString("latin1")]);
      const paths = [cleanPath(prev.sha), cleanPath(sha)];
      record(
        `${prev.sha.slice(0, 12)}+${sha.slice(0, 12)}`,
        "blob",
        paths.every(Boolean) ? paths.join(" + ") : undefined,
        joined.filter((f) => f.rule !== UNDECODABLE_RULE),
      );
    };

    /**
     * One pass over a batch. Only when it finds something are its objects
     * (and their boundaries) scanned one by one, to say which holds it; a
     * secret only the whole batch shows (spread over three tiny files) is
     * reported against the batch's first and last object.
     */
    const flush = (kind: string) => {
      const b = batches.get(kind);
      if (!b?.objects.length) return;
      batches.delete(kind);
      const found = scanner.scanPieces(b.objects.map((o) => o.bytes.toString("utf8")));
      if (!found.length) return;
      const before = result.findings.length;
      let prev: { sha: string; tail: Buffer } | undefined;
      for (const o of b.objects) {
        record(o.sha.slice(0, 12), o.type, o.type === "blob" ? cleanPath(o.sha) : undefined, scanner.scanBytes(o.bytes));
        if (prev && kind === "blob") scanBoundary(prev, o.sha, o.bytes.subarray(0, EDGE_BYTES));
        prev = { sha: o.sha, tail: o.bytes.subarray(Math.max(0, o.bytes.length - EDGE_BYTES)) };
      }
      if (result.findings.length === before && !result.unscannable) {
        const first = b.objects[0]!;
        const last = b.objects[b.objects.length - 1]!;
        record(`${first.sha.slice(0, 12)}+…+${last.sha.slice(0, 12)}`, first.type, undefined, found);
      }
    };

    const finish = () => {
      const o = cur!;
      cur = undefined;
      result.objects++;
      if (!o.scanned) return;
      const kind = o.type === "blob" ? "blob" : "message";
      const whole = o.parts ? (o.parts.length === 1 ? o.parts[0]! : Buffer.concat(o.parts)) : undefined;
      if (whole && isUtf8(whole)) {
        const b = batches.get(kind) ?? { objects: [], size: 0 };
        // The boundary with a streamed blob before it (batched neighbours are covered by the batch).
        if (kind === "blob" && prevBlob && !b.objects.length) scanBoundary(prevBlob, o.sha, whole.subarray(0, EDGE_BYTES));
        b.objects.push({ sha: o.sha, type: o.type, bytes: whole });
        b.size += whole.length;
        batches.set(kind, b);
        if (kind === "blob") prevBlob = { sha: o.sha, tail: whole.subarray(Math.max(0, whole.length - EDGE_BYTES)) };
        if (b.size >= BATCH_BYTES) flush(kind);
        return;
      }
      // Large (streamed as it arrived) or not UTF-8 (binary, UTF-16: the byte scanner's own handling).
      if (kind === "blob") {
        const head = whole ? whole.subarray(0, EDGE_BYTES) : Buffer.concat(o.head, o.headLen);
        const tail = whole ? whole.subarray(Math.max(0, whole.length - EDGE_BYTES)) : o.tail;
        flush("blob");
        if (prevBlob) scanBoundary(prevBlob, o.sha, head);
        prevBlob = { sha: o.sha, tail };
      }
      record(o.sha.slice(0, 12), o.type, o.type === "blob" ? cleanPath(o.sha) : undefined, whole ? scanner.scanBytes(whole) : o.scan!.end());
    };

    const take = (chunk: Buffer) => {
      while (chunk.length) {
        if (awaitingNewline) {
          // The newline git writes after each object's content.
          chunk = chunk.subarray(1);
          awaitingNewline = false;
          continue;
        }
        if (!cur) {
          const nl = chunk.indexOf(0x0a);
          if (nl < 0) {
            header = Buffer.concat([header, chunk]);
            return;
          }
          const line = Buffer.concat([header, chunk.subarray(0, nl)]).toString("latin1");
          header = Buffer.alloc(0);
          chunk = chunk.subarray(nl + 1);
          const [sha, type, size] = line.split(" ");
          if (type === "missing" || size === undefined) continue;
          const left = Number(size);
          const scanned = type === "blob" || type === "commit" || type === "tag";
          const batch = scanned && left <= BATCH_OBJECT_BYTES;
          cur = { sha: sha!, type: type!, left, scanned, parts: batch ? [] : undefined, scan: scanned && !batch ? scanner.stream() : undefined, head: [], headLen: 0, tail: Buffer.alloc(0) };
          result.bytes += cur.left;
          if (cur.left === 0) {
            finish();
            awaitingNewline = true;
          }
          continue;
        }
        const n = Math.min(cur.left, chunk.length);
        const piece = chunk.subarray(0, n);
        chunk = chunk.subarray(n);
        cur.left -= n;
        if (cur.parts) cur.parts.push(Buffer.from(piece));
        else cur.scan?.push(piece);
        if (cur.type === "blob" && cur.scan) {
          if (cur.headLen < EDGE_BYTES) {
            const h = piece.subarray(0, EDGE_BYTES - cur.headLen);
            cur.head.push(Buffer.from(h));
            cur.headLen += h.length;
          }
          const t = Buffer.concat([cur.tail, piece]);
          cur.tail = Buffer.from(t.subarray(Math.max(0, t.length - EDGE_BYTES)));
        }
        if (cur.left === 0) {
          finish();
          awaitingNewline = true;
        }
      }
    };

    child.stdout.on("data", (chunk: Buffer) => {
      try {
        take(chunk);
      } catch (err) {
        child.kill("SIGKILL");
        reject(err as Error);
      }
    });
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString("utf8")));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0 && !cur) {
        flush("blob");
        flush("message");
        return resolve(result);
      } else reject(new Error(`git cat-file failed (exit ${code}): ${stderr.trim().split("\n").pop() ?? ""}`));
    });
    child.stdin.on("error", () => {});
    child.stdin.end(`${[...objects.keys()].join("\n")}\n`);
  });
}
