// Secret scan of what a push adds: every new blob (and commit/tag message),
// with the same secret shapes as the firewall's DLP. Findings name the file
// and the kind of secret, never the secret.
import { spawn } from "node:child_process";
import { findSecrets } from "../../security/secrets.js";
import { git } from "./git.js";

/** Blobs bigger than this are refused rather than held in memory to scan. */
export const MAX_SCAN_BLOB_BYTES = 64 * 1024 * 1024;

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
  /** Set when something could not be scanned (too big): the push is refused. */
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

/** Stream the objects through `git cat-file --batch` and scan blobs, commits and tags. */
export function scanObjects(objects: Map<string, string | undefined>, env: NodeJS.ProcessEnv): Promise<ScanResult> {
  const result: ScanResult = { objects: 0, bytes: 0, findings: [] };
  if (!objects.size) return Promise.resolve(result);
  return new Promise((resolve, reject) => {
    const child = spawn("git", ["cat-file", "--batch"], { env, stdio: ["pipe", "pipe", "pipe"] });
    // Chunks are joined only when a whole header or object is there, so a
    // large blob costs one copy, not one per chunk.
    let pending: Buffer[] = [];
    let pendingLen = 0;
    const joined = () => {
      const b = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingLen);
      pending = [b];
      return b;
    };
    const keep = (rest: Buffer) => {
      pending = [rest];
      pendingLen = rest.length;
    };
    let header: { sha: string; type: string; size: number } | undefined;
    let stderr = "";
    const seen = new Set<string>();
    const onObject = (sha: string, type: string, body: Buffer) => {
      result.objects++;
      result.bytes += body.length;
      if (type !== "blob" && type !== "commit" && type !== "tag") return;
      const path = objects.get(sha);
      for (const f of findSecrets(body.toString("latin1"))) {
        const key = `${sha}/${f.rule}`;
        if (seen.has(key)) continue;
        seen.add(key);
        result.findings.push({ object: sha.slice(0, 12), type, ...(path && !findSecrets(path).length ? { path } : {}), rule: f.rule, description: f.description, encoding: f.encoding });
      }
    };
    child.stdout.on("data", (chunk: Buffer) => {
      pending.push(chunk);
      pendingLen += chunk.length;
      for (;;) {
        if (!header) {
          const b = joined();
          const nl = b.indexOf(0x0a);
          if (nl < 0) return;
          const [sha, type, size] = b.subarray(0, nl).toString("latin1").split(" ");
          keep(b.subarray(nl + 1));
          if (type === "missing" || size === undefined) continue;
          header = { sha: sha!, type: type!, size: Number(size) };
          if (header.size > MAX_SCAN_BLOB_BYTES) {
            result.unscannable = `${header.type} ${sha!.slice(0, 12)}${objects.get(sha!) ? ` (${objects.get(sha!)})` : ""} is ${header.size} bytes, over the ${MAX_SCAN_BLOB_BYTES}-byte scan limit`;
            child.kill("SIGKILL");
            return;
          }
        }
        if (pendingLen < header.size + 1) return;
        const b = joined();
        onObject(header.sha, header.type, b.subarray(0, header.size));
        keep(b.subarray(header.size + 1));
        header = undefined;
      }
    });
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString("utf8")));
    child.on("error", reject);
    child.on("close", (code) => {
      if (result.unscannable || code === 0) resolve(result);
      else reject(new Error(`git cat-file failed (exit ${code}): ${stderr.trim().split("\n").pop() ?? ""}`));
    });
    child.stdin.on("error", () => {});
    child.stdin.end(`${[...objects.keys()].join("\n")}\n`);
  });
}
