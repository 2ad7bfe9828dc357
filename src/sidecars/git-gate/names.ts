// Secrets in names (SPEC §10 #9): every ref name a push sets and every path
// it adds are scanned with the shared secret scanner, like file contents.
// A token can be split across components (`ghp_abc/def…` as a directory and
// a file, or as ref segments), so each name is scanned as every run of
// consecutive components, joined with "/" and joined with nothing. Findings
// say which kind of secret and where (a commit, the n-th ref of the push),
// never the name itself.
import { spawn } from "node:child_process";
import { findSecrets, type SecretFinding } from "../../security/secrets.js";

/** Runs of components longer than this are not joined further (longer than any secret shape). */
export const MAX_JOINED_CHARS = 512;
/** A push adding more paths than this is refused as unscannable (a tree bomb expands without bound). */
export const MAX_PATHS = 1_000_000;
/** Text scanned per findSecrets call when batching many short names. */
const BATCH_CHARS = 1 << 20;
/** Distinct strings remembered to skip rescans; past this the memory is dropped (scanning again is only slower). */
const MAX_REMEMBERED = 200_000;

/**
 * The strings to scan for one name ending at its last component: for each
 * start component, the run up to the end joined with "/" and with "". Runs
 * that end earlier are produced for the names of the parent directories
 * (git lists those as entries of their own), or by `refNameStrings`.
 */
export function runsEndingAtLast(components: readonly string[]): string[] {
  const out: string[] = [];
  let joined = "";
  let slashed = "";
  for (let k = components.length - 1; k >= 0; k--) {
    const c = components[k]!;
    joined = c + joined;
    slashed = k === components.length - 1 ? c : `${c}/${slashed}`;
    out.push(joined);
    if (k < components.length - 1) out.push(slashed);
    if (joined.length > MAX_JOINED_CHARS) break;
  }
  return out;
}

/** Every run of consecutive components of a ref name (refs have few of them). */
export function refNameStrings(ref: string): string[] {
  const parts = ref.split("/");
  const out = new Set<string>([ref]);
  for (let end = 1; end <= parts.length; end++) for (const s of runsEndingAtLast(parts.slice(0, end))) out.add(s);
  return [...out];
}

/** The secrets a ref name holds, whole or split across its segments. */
export function refNameSecrets(ref: string): SecretFinding[] {
  return dedupe(refNameStrings(ref).flatMap((s) => findSecrets(s)));
}

/**
 * How a ref name may appear in logs, records and messages: as itself, or,
 * when it holds a secret, as a placeholder that says which kind of secret and
 * which ref of the push (1-based) it was.
 */
export function displayRef(ref: string, index: number): string {
  let found: SecretFinding[];
  try {
    found = refNameSecrets(ref);
  } catch {
    return `(ref #${index} of this push: name withheld, it could not be checked for secrets)`;
  }
  return found.length ? `(ref #${index} of this push: name withheld, it holds ${describe(found)})` : ref;
}

/** Free text (git's messages, reasons) that may echo a name: withheld whole when it holds a secret (or cannot be checked). */
export function withholdSecrets(text: string): string {
  let found: SecretFinding[];
  try {
    found = findSecrets(text);
  } catch {
    return "(text withheld: it could not be checked for secrets)";
  }
  return found.length ? `(text withheld: it holds ${describe(found)})` : text;
}

export function describe(found: readonly SecretFinding[]): string {
  const kinds = [...new Set(found.map((f) => f.description))];
  return kinds.length === 1 ? kinds[0]! : `${kinds.slice(0, -1).join(", ")} and ${kinds[kinds.length - 1]}`;
}

function dedupe(found: SecretFinding[]): SecretFinding[] {
  return [...new Map(found.map((f) => [`${f.rule}/${f.encoding}`, f])).values()];
}

export interface PathFinding {
  /** Short id of a commit that adds the path. */
  commit: string;
  description: string;
  rule: string;
  /** The secret is only there when several names are read together. */
  spread?: boolean;
}

export interface PathScan {
  paths: number;
  findings: PathFinding[];
  /** Set when the push adds too many paths to scan: it is refused. */
  unscannable?: string;
}

/**
 * Scan the names of every path the new commits add (directories included):
 * `git diff-tree -r -t` against each parent lists exactly the entries that
 * are new at their place, so a renamed directory is read whole and an
 * untouched one is not read at all.
 */
export async function scanNewPaths(commits: readonly string[], env: NodeJS.ProcessEnv): Promise<PathScan> {
  const result: PathScan = { paths: 0, findings: [] };
  if (!commits.length) return result;
  const scanner = new BatchScanner(result);
  await new Promise<void>((resolve, reject) => {
    const child = spawn("git", ["diff-tree", "--stdin", "-r", "-t", "-m", "--root", "-z", "--no-renames", "--name-status", "--diff-filter=A"], { env, stdio: ["pipe", "pipe", "pipe"] });
    let carry: Buffer = Buffer.alloc(0);
    let commit = "";
    let status: string | undefined;
    let stderr = "";
    let stopped = false;
    const token = (t: Buffer) => {
      if (status !== undefined) {
        if (status === "A") {
          result.paths++;
          scanner.add(t.toString("utf8"), commit);
          if (result.paths > MAX_PATHS && !stopped) {
            stopped = true;
            result.unscannable = `the push adds more than ${MAX_PATHS} paths; their names cannot all be scanned for secrets`;
            child.kill("SIGKILL");
          }
        }
        status = undefined;
        return;
      }
      const s = t.toString("latin1");
      if (/^[0-9a-f]{40}$|^[0-9a-f]{64}$/.test(s)) commit = s;
      else status = s[0];
    };
    child.stdout.on("data", (chunk: Buffer) => {
      if (stopped) return;
      const b = carry.length ? Buffer.concat([carry, chunk]) : chunk;
      let start = 0;
      for (let nul = b.indexOf(0, start); nul >= 0 && !stopped; nul = b.indexOf(0, start)) {
        token(b.subarray(start, nul));
        start = nul + 1;
      }
      carry = Buffer.from(b.subarray(start));
    });
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString("utf8")));
    child.on("error", reject);
    child.on("close", (code) => {
      if (stopped || code === 0) resolve();
      else reject(new Error(`git diff-tree failed (exit ${code}): ${stderr.trim().split("\n").pop() ?? ""}`));
    });
    child.stdin.on("error", () => {});
    child.stdin.end(`${commits.join("\n")}\n`);
  });
  scanner.flush();
  return result;
}

/**
 * Scans many short strings in large batches (one scanner call per MiB, not
 * per name), and only when a batch holds a secret, finds which string did.
 * Each distinct string is scanned once per push.
 */
class BatchScanner {
  private lines: Array<{ text: string; commit: string }> = [];
  private chars = 0;
  private readonly seen = new Set<string>();
  private readonly reported = new Set<string>();

  constructor(private readonly result: PathScan) {}

  add(path: string, commit: string): void {
    for (const s of runsEndingAtLast(path.split("/"))) {
      if (this.seen.has(s)) continue;
      if (this.seen.size >= MAX_REMEMBERED) this.seen.clear();
      this.seen.add(s);
      this.lines.push({ text: s, commit });
      this.chars += s.length + 2;
    }
    if (this.chars >= BATCH_CHARS) this.flush();
  }

  flush(): void {
    if (!this.lines.length) return;
    const batch = this.lines;
    this.lines = [];
    this.chars = 0;
    // A blank line between names: no secret shape spans one (the scanner's own piece separator).
    const found = findSecrets(batch.map((l) => l.text).join("\n\n"));
    if (!found.length) return;
    let located = false;
    for (const l of batch) {
      for (const f of findSecrets(l.text)) {
        located = true;
        this.report({ commit: l.commit.slice(0, 12), description: f.description, rule: f.rule });
      }
    }
    // Only the batch as a whole holds it (a decoder joined names): still a finding.
    if (!located) for (const f of found) this.report({ commit: batch[0]!.commit.slice(0, 12), description: f.description, rule: f.rule, spread: true });
  }

  private report(f: PathFinding): void {
    const key = `${f.commit}/${f.rule}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.result.findings.push(f);
  }
}

/** Refusal wording for path findings: "a path in commit abc123 holds a GitHub token". */
export function describePathFindings(findings: readonly PathFinding[]): string {
  const what = findings.map((f) => (f.spread ? `the names of paths added by commit ${f.commit} together hold ${f.description}` : `a path in commit ${f.commit} holds ${f.description}`));
  return `${what.slice(0, 10).join("; ")}${what.length > 10 ? `; and ${what.length - 10} more` : ""}`;
}
