// The orchestrator's inbox: list proposals across bottles (paged), decide
// them, and withdraw grants whose time is up. Every step lands in the
// bottle's audit log. Deciding and withdrawing happen under the bottle's
// lifecycle lock, so two deciders cannot both win and an expired grant is
// never re-applied by a decision that read the grant list before the sweep.
import { promises as fs } from "node:fs";
import { quote, safeJson } from "../contracts/escape.js";
import { audit, listProposals, queuePaths, readDecision, readProposal, writeDecision, type Decision, type Proposal } from "../contracts/queue.js";
import { PROPOSAL_ID_RE } from "../contracts/patterns.js";
import { BottleError } from "../errors.js";
import { logger } from "../log.js";
import { policyContext, resolvePlan } from "../plan/index.js";
import { assessProposal, type AssessContext } from "../security/access-policy.js";
import { readGrants, writeGrants, type Grant } from "../state/grants.js";
import { layoutOf, type BottleLayout } from "../state/layout.js";
import { acquireLock } from "../state/lock.js";
import { knownSlugs, requireBottle } from "../state/lookup.js";
import { contextOf, projectOf, type CtxInput } from "./context.js";
import { expireGrants, withdrawDue } from "./grants.js";
import { readPlanInput } from "./plan-input.js";
import { formatEntry } from "./present.js";
import { reconfigure } from "./reconfigure.js";

/** Inbox pages: entries per page by default and at most, and a size budget per page. */
export const PAGE_LIMITS = { defaultLimit: 50, maxLimit: 200, maxBytes: 1024 * 1024 } as const;

export interface InboxEntry {
  slug: string;
  proposal: Proposal;
  status: "pending" | "approved" | "denied" | "expired";
  decision?: Decision;
  /** For a pending proposal: why an approval would be refused now. */
  refusal?: string;
  /** For a pending proposal: what makes it broad (approving needs force). */
  flags: string[];
}

export interface InboxPage {
  entries: InboxEntry[];
  /** How many proposals match (every page). */
  total: number;
  /** How many matching proposals come before this page. */
  offset: number;
  /** Pass back to get the next page; absent on the last one. */
  nextCursor?: string;
}

export interface InboxQuery extends CtxInput {
  slug?: string;
  includeDecided?: boolean;
  /** Entries per page (default 50, at most 200); a page also stops at about 1 MiB. */
  limit?: number;
  cursor?: string;
}

/** What the approval policy knows about a bottle: its plan as started (grants add no credentials). */
async function contextOfBottle(layout: BottleLayout): Promise<AssessContext> {
  return policyContext(resolvePlan({ ...(await readPlanInput(layout)), grants: [] }));
}

type Key = [createdAt: string, slug: string, id: string];
const keyOf = (slug: string, p: Proposal): Key => [p.createdAt, slug, p.id];
const compareKeys = (a: Key, b: Key) => a[0].localeCompare(b[0]) || a[1].localeCompare(b[1]) || a[2].localeCompare(b[2]);
const encodeCursor = (k: Key) => Buffer.from(JSON.stringify(k)).toString("base64url");

function decodeCursor(cursor: string): Key {
  try {
    const k = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as unknown;
    if (Array.isArray(k) && k.length === 3 && k.every((x) => typeof x === "string")) return k as Key;
  } catch {
    // fall through
  }
  throw new BottleError("bad-input", "cursor is not one this inbox returned", "Pass next_cursor from the previous page, or no cursor for the first page.");
}

/** Proposals, oldest first, one page at a time: pending only unless includeDecided. */
export async function inbox(o: InboxQuery = {}): Promise<InboxPage> {
  const ctx = contextOf(o);
  const root = ctx.root;
  const slugs = o.slug !== undefined ? [requireBottle(root, o.slug).slug] : knownSlugs(root);
  const limit = o.limit ?? PAGE_LIMITS.defaultLimit;
  if (!(Number.isInteger(limit) && limit >= 1 && limit <= PAGE_LIMITS.maxLimit)) throw new BottleError("bad-input", `limit must be a whole number from 1 to ${PAGE_LIMITS.maxLimit}`);
  const after = o.cursor !== undefined ? decodeCursor(o.cursor) : undefined;
  await expireGrants(ctx, { slugs });

  const all: Array<{ slug: string; proposal: Proposal; decided: boolean; key: Key }> = [];
  for (const slug of slugs) {
    const dir = layoutOf(root, slug).queueDir;
    const decided = new Set((await fs.readdir(queuePaths(dir).decisions).catch(() => [] as string[])).map((n) => n.replace(/\.json$/, "")));
    for (const proposal of await listProposals(dir)) {
      const isDecided = decided.has(proposal.id);
      if (isDecided && !o.includeDecided) continue;
      all.push({ slug, proposal, decided: isDecided, key: keyOf(slug, proposal) });
    }
  }
  all.sort((a, b) => compareKeys(a.key, b.key));
  const offset = after ? all.findIndex((x) => compareKeys(x.key, after) > 0) : 0;
  const start = offset < 0 ? all.length : offset;

  const contexts = new Map<string, AssessContext | undefined>();
  const contextFor = async (slug: string) => {
    if (!contexts.has(slug)) contexts.set(slug, await contextOfBottle(layoutOf(root, slug)).catch(() => undefined));
    return contexts.get(slug);
  };
  const entries: InboxEntry[] = [];
  let bytes = 0;
  const now = Date.now();
  for (const x of all.slice(start, start + limit)) {
    const decision = x.decided ? await readDecision(layoutOf(root, x.slug).queueDir, x.proposal.id) : undefined;
    const status: InboxEntry["status"] = !decision ? "pending" : decision.verdict === "denied" ? "denied" : decision.expiresAt && Date.parse(decision.expiresAt) <= now ? "expired" : "approved";
    const entry: InboxEntry = { slug: x.slug, proposal: x.proposal, status, ...(decision ? { decision } : {}), flags: [] };
    if (status === "pending") {
      const ctx = await contextFor(x.slug);
      if (ctx) {
        const a = assessProposal(x.proposal, ctx);
        if (a.refuse) entry.refusal = a.refuse;
        entry.flags = a.flags;
      }
    }
    // Structured and text forms both go out: count both against the page budget.
    bytes += safeJson(entry).length + formatEntry(entry).join("\n").length;
    if (entries.length && bytes > PAGE_LIMITS.maxBytes) break;
    entries.push(entry);
  }
  const last = entries.at(-1);
  const more = start + entries.length < all.length;
  return { entries, total: all.length, offset: start, ...(more && last ? { nextCursor: encodeCursor(keyOf(last.slug, last.proposal)) } : {}) };
}

export interface DecideRequest extends CtxInput {
  slug: string;
  id: string;
  verdict: "approved" | "denied";
  note?: string;
  /** Seconds until an approval is withdrawn; none = until the bottle stops. */
  ttlSeconds?: number;
  /** Approve a broad proposal (a public-suffix wildcard, an IP address) anyway. */
  force?: boolean;
}

export interface DecideResult {
  decision: Decision;
  applied: boolean;
  proposal: Proposal;
  /** What made it broad, when it was approved with force. */
  flags: string[];
}

/** How long a decision waits for another operation on the same bottle to finish. */
const DECIDE_LOCK_WAIT_MS = 30_000;

export async function decide(r: DecideRequest): Promise<DecideResult> {
  if (r.ttlSeconds !== undefined && !(Number.isInteger(r.ttlSeconds) && r.ttlSeconds > 0 && r.ttlSeconds <= 30 * 86_400)) {
    throw new BottleError("bad-input", "ttl_seconds must be a whole number of seconds between 1 and 2592000 (30 days)");
  }
  const ctx = contextOf(r);
  const { slug, layout } = requireBottle(ctx.root, r.slug);
  const dir = layout.queueDir;
  // Everything from "was it decided?" to writing the decision happens under
  // the lock: of two racing deciders exactly one wins, and the other is told.
  const lock = await acquireLock(layout, { waitMs: DECIDE_LOCK_WAIT_MS });
  try {
    const { meta } = requireBottle(ctx.root, slug);
    const b = { layout, project: projectOf(meta) };
    if (meta.state === "running") {
      await withdrawDue(ctx, layout).catch((err: Error) => logger.warn({ slug, err: err.message }, "withdrawing expired grants failed; the next sweep tries again"));
    }
    const proposal = await readProposal(dir, r.id);
    if (!proposal) {
      const pending = (await listProposals(dir)).map((p) => p.id);
      const shown = pending.slice(-20);
      throw new BottleError(
        "bad-input",
        `bottle "${slug}" has no proposal ${quote(r.id)}`,
        pending.length ? `Its latest proposals: ${shown.join(", ")}${pending.length > shown.length ? ` (${pending.length} in all; see bottle_proposals)` : ""}.` : "It has no proposals.",
      );
    }
    const earlier = await readDecision(dir, r.id);
    if (earlier) {
      throw new BottleError(
        "conflict",
        `proposal ${r.id} was already ${earlier.verdict} at ${earlier.decidedAt}${earlier.note ? ` (note ${quote(earlier.note)})` : ""}; this ${r.verdict === "approved" ? "approval" : "denial"} changed nothing`,
      );
    }
    const now = new Date();
    const decision: Decision = {
      id: r.id,
      verdict: r.verdict,
      note: r.note ?? "",
      decidedAt: now.toISOString(),
      ...(r.verdict === "approved" && r.ttlSeconds ? { expiresAt: new Date(now.getTime() + r.ttlSeconds * 1000).toISOString() } : {}),
    };
    let applied = false;
    let flags: string[] = [];
    if (r.verdict === "approved") {
      if (meta.state !== "running") throw new BottleError("conflict", `bottle "${slug}" is ${meta.state}; only a running bottle's proposals can be approved`);
      const a = assessProposal(proposal, await contextOfBottle(layout));
      if (a.refuse) {
        await audit(dir, "approval_refused", { id: r.id, why: a.refuse });
        throw new BottleError("bad-input", `cannot approve ${r.id}: ${a.refuse}`, "Deny it with a note instead, or change the profile.");
      }
      flags = a.flags;
      if (flags.length && !r.force) {
        await audit(dir, "approval_needs_force", { id: r.id, flags });
        throw new BottleError(
          "bad-input",
          `${r.id} is broad: ${flags.join("; ")}`,
          "If that is what you mean, approve again with force (--force / force: true); otherwise deny it and say what narrower request you would approve.",
        );
      }
      if (proposal.kind !== "other") {
        const before = await readGrants(layout);
        const grant: Grant = {
          id: proposal.id,
          kind: proposal.kind,
          target: proposal.target,
          ...(proposal.route ? { route: proposal.route } : {}),
          grantedAt: decision.decidedAt,
          ...(decision.expiresAt ? { expiresAt: decision.expiresAt } : {}),
        };
        const after = [...before, grant];
        try {
          await writeGrants(layout, after);
          await reconfigure(ctx, b, after);
        } catch (err) {
          await writeGrants(layout, before);
          await reconfigure(ctx, b, before).catch(() => {});
          await audit(dir, "apply_failed", { id: r.id, why: (err as Error).message });
          throw err;
        }
        applied = true;
        await audit(dir, "applied", {
          id: r.id,
          kind: proposal.kind,
          target: proposal.target,
          ...(flags.length ? { forced: flags } : {}),
          ...(decision.expiresAt ? { expiresAt: decision.expiresAt } : {}),
        });
      }
    }
    // The decision is written last: an agent told "approved" finds it in force.
    await writeDecision(dir, decision);
    await audit(dir, "decided", { id: r.id, verdict: r.verdict, note: decision.note, ...(decision.expiresAt ? { expiresAt: decision.expiresAt } : {}) });
    return { decision, applied, proposal, flags };
  } finally {
    await lock.release();
  }
}

/** The proposal files in a bottle's queue (the MCP server watches them for new ones). */
export async function proposalFiles(slug: string, o: CtxInput = {}): Promise<string[]> {
  const dir = queuePaths(layoutOf(contextOf(o).root, slug).queueDir).proposals;
  return (await fs.readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith(".json") && PROPOSAL_ID_RE.test(f.slice(0, -5)));
}
