// Secret scan of what a push adds: every new blob (and commit/tag message),
// with the firewall's scanner (one scanner, one rule set: shapes, encodings,
// look-alikes). Objects are streamed through it window by window, so a blob
// of any size costs bounded memory; consecutive blobs are also scanned
// across their boundary (a token split over two files). Findings name the
// file and the kind of secret, never the secret.
import { spawn } from "node:child_process";
import { defaultScanner, findSecrets, UNDECODABLE_RULE, type ByteScan } from "../../security/secrets.js";
import { git } from "./git.js";

/** How much of each blob's start and end is kept to scan across the boundary with its neighbour. */
const EDGE_BYTES = 4096;

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
    // The object being received: its header, bytes still to come, its scan, and its edges.
    let cur: { sha: string; type: string; left: number; scan: ByteScan; head: Buffer[]; headLen: number; tail: Buffer } | undefined;
    let header = Buffer.alloc(0);
    let awaitingNewline = false;
    let prevBlob: { sha: string; path: string | undefined; tail: Buffer } | undefined;
    let stderr = "";

    const finish = () => {
      const o = cur!;
      cur = undefined;
      result.objects++;
      const path = o.type === "blob" ? cleanPath(o.sha) : undefined;
      record(o.sha.slice(0, 12), o.type, path, o.scan.end());
      if (o.type !== "blob") return;
      // Across the boundary with the previous blob: its end joined to this one's start.
      const head = Buffer.concat(o.head, o.headLen);
      if (prevBlob?.tail.length && head.length) {
        const joined = scanner.scanPieces([prevBlob.tail.toString("latin1"), head.toString("latin1")]);
        const both = [prevBlob.path, path].every(Boolean) ? `${prevBlob.path} + ${path}` : undefined;
        record(
          `${prevBlob.sha.slice(0, 12)}+${o.sha.slice(0, 12)}`,
          "blob",
          both,
          joined.filter((f) => f.rule !== UNDECODABLE_RULE),
        );
      }
      prevBlob = { sha: o.sha, path, tail: o.tail };
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
          cur = { sha: sha!, type: type!, left: Number(size), scan: scanner.stream(), head: [], headLen: 0, tail: Buffer.alloc(0) };
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
        const scanned = cur.type === "blob" || cur.type === "commit" || cur.type === "tag";
        if (scanned) cur.scan.push(piece);
        if (cur.type === "blob") {
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
      if (code === 0 && !cur) resolve(result);
      else reject(new Error(`git cat-file failed (exit ${code}): ${stderr.trim().split("\n").pop() ?? ""}`));
    });
    child.stdin.on("error", () => {});
    child.stdin.end(`${[...objects.keys()].join("\n")}\n`);
  });
}
