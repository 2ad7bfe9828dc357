// The supervise queue: a directory shared by the supervise sidecar (which
// writes proposals) and the host (which writes decisions). One file per
// proposal and per decision, each written by temp-then-rename, so a reader
// sees a whole file or none; readers skip anything that does not validate.
// audit.jsonl is append-only; a torn last line (a writer killed mid-append)
// is skipped by readers, never trusted.
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import nodePath from "node:path";
import { z } from "zod";
import { writeFileAtomic } from "./atomic.js";
import { domainPattern, HEADER_NAME_RE, hostname, PATH_PREFIX_RE, PROPOSAL_ID_RE, REF_PATTERN_RE } from "./patterns.js";
import { QUEUE_LIMITS } from "./limits.js";
import { safeJson } from "./escape.js";

/** A proposal or decision file: `<id>.json`. */
const ID_FILE = new RegExp(`^(${PROPOSAL_ID_RE.source.slice(1, -1)})\\.json$`);

export const ACCESS_KINDS = ["domain", "egress_route", "git_ref", "other"] as const;

export const routeRequestSchema = z.strictObject({
  path_prefix: z.string().regex(PATH_PREFIX_RE, { error: 'expected a path prefix starting with "/" (no spaces, "?" or "#")' }).default("/"),
  /** The destination port, as egress routes by host and port. */
  port: z.int({ error: "expected a port number" }).min(1, { error: "expected a port number" }).max(65535, { error: "expected a port number" }).default(443),
  header: z.string().regex(HEADER_NAME_RE, { error: "expected an HTTP header name (letters, digits and '-')" }),
  /** Template naming an env var egress already holds, e.g. "Bearer ${GITHUB_TOKEN}". */
  value: z.string().min(1, { error: "expected a value template" }).max(500, { error: "expected at most 500 characters" }),
});

export const proposalSchema = z.strictObject({
  id: z.string().regex(PROPOSAL_ID_RE),
  kind: z.enum(ACCESS_KINDS),
  target: z.string().min(1).max(500),
  reason: z.string().min(1).max(QUEUE_LIMITS.maxReasonChars),
  route: routeRequestSchema.optional(),
  createdAt: z.string(),
});

export const decisionSchema = z.strictObject({
  id: z.string(),
  verdict: z.enum(["approved", "denied"]),
  note: z.string().max(4000).default(""),
  decidedAt: z.string(),
  expiresAt: z.string().optional(),
});

export type Proposal = z.output<typeof proposalSchema>;
export type Decision = z.output<typeof decisionSchema>;
/** What a writer supplies (defaults such as a route's port filled in by the schema). */
export type ProposalInput = Omit<z.input<typeof proposalSchema>, "id" | "createdAt">;

/** What a target must look like for each kind (checked when proposing and deciding). */
export function validateTarget(kind: Proposal["kind"], target: string): string | undefined {
  switch (kind) {
    case "domain":
      return domainPattern.safeParse(target).success ? undefined : 'a domain target must be a hostname or "*.suffix"';
    case "egress_route":
      return hostname.safeParse(target).success ? undefined : "an egress_route target must be the API's hostname";
    case "git_ref":
      return REF_PATTERN_RE.test(target) ? undefined : 'a git_ref target must be a ref pattern like "refs/heads/agent/*"';
    case "other":
      return undefined;
  }
}

export const queuePaths = (dir: string) => ({
  proposals: nodePath.join(dir, "proposals"),
  decisions: nodePath.join(dir, "decisions"),
  audit: nodePath.join(dir, "audit.jsonl"),
});

export async function ensureQueue(dir: string): Promise<void> {
  const q = queuePaths(dir);
  await fs.mkdir(q.proposals, { recursive: true, mode: 0o700 });
  await fs.mkdir(q.decisions, { recursive: true, mode: 0o700 });
}

export async function audit(dir: string, event: string, data: Record<string, unknown>): Promise<void> {
  const file = queuePaths(dir).audit;
  // If a killed writer left a torn last line, start on a fresh line so this
  // event is not glued to the torn one (and lost with it).
  const fh = await fs.open(file, "a+", 0o600);
  try {
    const { size } = await fh.stat();
    let lead = "";
    if (size > 0) {
      const last = Buffer.alloc(1);
      await fh.read(last, 0, 1, size - 1);
      if (last[0] !== 0x0a) lead = "\n";
    }
    // Agent text lands here too: escaped so `tail -f audit.jsonl` cannot be steered by it.
    await fh.appendFile(`${lead}${safeJson({ at: new Date().toISOString(), event, ...data })}\n`);
  } finally {
    await fh.close();
  }
}

export async function readAudit(dir: string): Promise<Array<Record<string, unknown> & { at: string; event: string }>> {
  const text = await fs.readFile(queuePaths(dir).audit, "utf8").catch(() => "");
  const out: Array<Record<string, unknown> & { at: string; event: string }> = [];
  for (const line of text.split("\n")) {
    try {
      const v = JSON.parse(line);
      if (v && typeof v.event === "string") out.push(v);
    } catch {
      // a torn line from a killed writer: skipped, never trusted
    }
  }
  return out;
}

export async function writeProposal(dir: string, input: ProposalInput): Promise<Proposal> {
  const p = proposalSchema.parse({ ...input, id: `p-${randomBytes(6).toString("hex")}`, createdAt: new Date().toISOString() });
  await writeFileAtomic(nodePath.join(queuePaths(dir).proposals, `${p.id}.json`), `${JSON.stringify(p, null, 2)}\n`, 0o600);
  await audit(dir, "proposed", { id: p.id, kind: p.kind, target: p.target, reason: p.reason });
  return p;
}

async function readValid<T>(file: string, schema: z.ZodType<T>): Promise<T | undefined> {
  try {
    return schema.parse(JSON.parse(await fs.readFile(file, "utf8")));
  } catch {
    return undefined;
  }
}

export const readProposal = (dir: string, id: string) => (PROPOSAL_ID_RE.test(id) ? readValid(nodePath.join(queuePaths(dir).proposals, `${id}.json`), proposalSchema) : Promise.resolve(undefined));
export const readDecision = (dir: string, id: string) => (PROPOSAL_ID_RE.test(id) ? readValid(nodePath.join(queuePaths(dir).decisions, `${id}.json`), decisionSchema) : Promise.resolve(undefined));

export async function writeDecision(dir: string, d: Decision): Promise<void> {
  await writeFileAtomic(nodePath.join(queuePaths(dir).decisions, `${d.id}.json`), `${JSON.stringify(decisionSchema.parse(d), null, 2)}\n`, 0o600);
}

/** Every whole, valid proposal (temp files and torn ones are skipped), oldest first. */
export async function listProposals(dir: string): Promise<Proposal[]> {
  const names = await fs.readdir(queuePaths(dir).proposals).catch(() => [] as string[]);
  const all = await Promise.all(names.filter((n) => ID_FILE.test(n)).map((n) => readValid(nodePath.join(queuePaths(dir).proposals, n), proposalSchema)));
  return all.filter((p): p is Proposal => p !== undefined).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

/** Ids of proposals with no decision yet, from file names alone (cheap enough for every request). */
export async function pendingIds(dir: string): Promise<string[]> {
  const q = queuePaths(dir);
  const [proposals, decisions] = await Promise.all([fs.readdir(q.proposals).catch(() => [] as string[]), fs.readdir(q.decisions).catch(() => [] as string[])]);
  const decided = new Set(decisions.map((n) => ID_FILE.exec(n)?.[1]).filter(Boolean));
  return proposals.map((n) => ID_FILE.exec(n)?.[1]).filter((id): id is string => !!id && !decided.has(id));
}

/** Why the inbox takes no more proposals now, or undefined. */
export async function inboxFull(dir: string, maxPending: number = QUEUE_LIMITS.maxPending): Promise<string | undefined> {
  const n = (await pendingIds(dir)).length;
  return n >= maxPending ? `the inbox already holds ${n} pending requests (the limit is ${maxPending}); wait for decisions on them (await_decision) before asking for more` : undefined;
}
