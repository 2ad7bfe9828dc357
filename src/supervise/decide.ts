// The orchestrator's inbox: list proposals across bottles, decide them, and
// withdraw grants whose time is up. Every step lands in the bottle's audit log.
import nodePath from "node:path";
import { stateRoot } from "../core/paths.js";
import { BottleError } from "../errors.js";
import { knownSlugs, metadataFile, requireBottle } from "../lifecycle/bottles.js";
import { acquireLock } from "../lifecycle/lock.js";
import { readMetadata } from "../lifecycle/metadata.js";
import { applyGrants, grantProblem, readBase, readGrants, writeGrants, type Grant } from "./grants.js";
import { audit, listProposals, readDecision, readProposal, validateTarget, writeDecision, type Decision, type Proposal } from "./queue.js";

export interface InboxEntry {
  slug: string;
  proposal: Proposal;
  status: "pending" | "approved" | "denied" | "expired";
  decision?: Decision;
}

export const queueDir = (root: string, slug: string) => nodePath.join(root, slug, "queue");

export async function inbox(o: { slug?: string; env?: NodeJS.ProcessEnv; includeDecided?: boolean } = {}): Promise<InboxEntry[]> {
  const root = stateRoot(o.env);
  const slugs = o.slug !== undefined ? [requireBottle(root, o.slug).slug] : knownSlugs(root);
  const out: InboxEntry[] = [];
  const now = Date.now();
  for (const slug of slugs) {
    const dir = queueDir(root, slug);
    for (const proposal of await listProposals(dir)) {
      const decision = await readDecision(dir, proposal.id);
      const status = !decision ? "pending" : decision.verdict === "denied" ? "denied" : decision.expiresAt && Date.parse(decision.expiresAt) <= now ? "expired" : "approved";
      if (status !== "pending" && !o.includeDecided) continue;
      out.push({ slug, proposal, status, ...(decision ? { decision } : {}) });
    }
  }
  return out;
}

export interface DecideRequest {
  slug: string;
  id: string;
  verdict: "approved" | "denied";
  note?: string;
  /** Seconds until an approval is withdrawn; none = until the bottle stops. */
  ttlSeconds?: number;
  env?: NodeJS.ProcessEnv;
}

export async function decide(r: DecideRequest): Promise<{ decision: Decision; applied: boolean }> {
  const root = stateRoot(r.env);
  const meta = requireBottle(root, r.slug);
  const stateDir = nodePath.join(root, meta.slug);
  const dir = queueDir(root, meta.slug);
  const proposal = await readProposal(dir, r.id);
  if (!proposal) {
    const pending = (await listProposals(dir)).map((p) => p.id);
    throw new BottleError("bad-input", `bottle "${meta.slug}" has no proposal "${r.id}"`, pending.length ? `Its proposals: ${pending.join(", ")}.` : "It has no proposals.");
  }
  if (await readDecision(dir, r.id)) throw new BottleError("conflict", `proposal ${r.id} was already decided`);
  if (r.ttlSeconds !== undefined && !(Number.isInteger(r.ttlSeconds) && r.ttlSeconds > 0 && r.ttlSeconds <= 30 * 86_400)) {
    throw new BottleError("bad-input", "ttl_seconds must be a whole number of seconds between 1 and 2592000 (30 days)");
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
  if (r.verdict === "approved") {
    if (meta.state !== "running") throw new BottleError("conflict", `bottle "${meta.slug}" is ${meta.state}; only a running bottle's proposals can be approved`);
    const base = await readBase(stateDir);
    const problem = validateTarget(proposal.kind, proposal.target) ?? grantProblem(proposal, base);
    if (problem) {
      await audit(dir, "approval_refused", { id: r.id, why: problem });
      throw new BottleError("bad-input", `cannot approve ${r.id}: ${problem}`, "Deny it with a note instead, or change the profile.");
    }
    if (proposal.kind !== "other") {
      const lock = await acquireLock(root, meta.slug);
      try {
        const before = await readGrants(stateDir);
        const grant: Grant = { id: proposal.id, kind: proposal.kind, target: proposal.target, ...(proposal.route ? { route: proposal.route } : {}), grantedAt: decision.decidedAt, ...(decision.expiresAt ? { expiresAt: decision.expiresAt } : {}) };
        const after = [...before, grant];
        try {
          await writeGrants(stateDir, after);
          await applyGrants({ slug: meta.slug, stateDir }, after);
        } catch (err) {
          await writeGrants(stateDir, before);
          await applyGrants({ slug: meta.slug, stateDir }, before).catch(() => {});
          await audit(dir, "apply_failed", { id: r.id, why: (err as Error).message });
          throw err;
        }
        applied = true;
        await audit(dir, "applied", { id: r.id, kind: proposal.kind, target: proposal.target, ...(decision.expiresAt ? { expiresAt: decision.expiresAt } : {}) });
      } finally {
        await lock.release();
      }
    }
  }
  // The decision is written last: an agent told "approved" finds it in force.
  await writeDecision(dir, decision);
  await audit(dir, "decided", { id: r.id, verdict: r.verdict, note: decision.note, ...(decision.expiresAt ? { expiresAt: decision.expiresAt } : {}) });
  return { decision, applied };
}

/** Withdraw every grant whose time is up, in every running bottle. Returns how many. */
export async function expireGrants(env?: NodeJS.ProcessEnv): Promise<number> {
  const root = stateRoot(env);
  let n = 0;
  for (const slug of knownSlugs(root)) {
    const meta = readMetadata(metadataFile(root, slug));
    if (meta?.state !== "running") continue;
    const stateDir = nodePath.join(root, slug);
    const grants = await readGrants(stateDir);
    const now = Date.now();
    const expired = grants.filter((g) => g.expiresAt && Date.parse(g.expiresAt) <= now);
    if (!expired.length) continue;
    let lock;
    try {
      lock = await acquireLock(root, slug);
    } catch {
      continue; // busy; next sweep
    }
    try {
      const keep = grants.filter((g) => !expired.includes(g));
      await writeGrants(stateDir, keep);
      await applyGrants({ slug, stateDir }, keep);
      for (const g of expired) await audit(queueDir(root, slug), "expired", { id: g.id, kind: g.kind, target: g.target });
      n += expired.length;
    } finally {
      await lock.release();
    }
  }
  return n;
}
