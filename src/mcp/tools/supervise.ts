// The orchestrator's side of supervise: the inbox and decisions.
import { z } from "zod";
import { decide, inbox } from "../../supervise/decide.js";
import { defineTool } from "../define-tool.js";

const entrySchema = z.object({
  slug: z.string(),
  status: z.enum(["pending", "approved", "denied", "expired"]),
  proposal: z.object({ id: z.string(), kind: z.string(), target: z.string(), reason: z.string(), createdAt: z.string(), route: z.object({ path_prefix: z.string(), header: z.string(), value: z.string() }).optional() }),
  decision: z.object({ id: z.string(), verdict: z.string(), note: z.string(), decidedAt: z.string(), expiresAt: z.string().optional() }).optional(),
});

export const registerProposalsTool = defineTool({
  name: "bottle_proposals",
  title: "Supervise inbox",
  description: "Access requests from bottled agents: pending ones (and recent decisions with include_decided), across all bottles or one. Subscribe to bottle://{slug}/proposals to be told when one arrives.",
  kind: "read",
  input: z.object({ slug: z.string().min(1).max(200).optional(), include_decided: z.boolean().default(false) }),
  output: z.object({ proposals: z.array(entrySchema) }),
  handler: async ({ slug, include_decided }) => {
    const proposals = await inbox({ ...(slug !== undefined ? { slug } : {}), includeDecided: include_decided });
    const text = proposals.length
      ? proposals.map((e) => `${e.slug} ${e.proposal.id} [${e.status}] ${e.proposal.kind} ${e.proposal.target} — ${e.proposal.reason}`).join("\n")
      : "No pending proposals.";
    return { structured: { proposals }, text };
  },
});

export const registerDecideTool = defineTool({
  name: "bottle_decide",
  title: "Decide a proposal",
  description: "Approve or deny an agent's access request. Approval applies it at once (sidecar configs rewritten and reloaded, no restart); ttl_seconds withdraws it again after that long. An egress route may only use a credential the profile already gives egress.",
  kind: "write",
  input: z.object({
    slug: z.string().min(1).max(200),
    id: z.string().min(1).max(64),
    verdict: z.enum(["approve", "deny"]),
    note: z.string().max(4000).optional(),
    ttl_seconds: z.number().int().min(1).max(30 * 86_400).optional(),
  }),
  output: z.object({ id: z.string(), verdict: z.enum(["approved", "denied"]), applied: z.boolean(), expiresAt: z.string().optional() }),
  handler: async ({ slug, id, verdict, note, ttl_seconds }) => {
    const r = await decide({ slug, id, verdict: verdict === "approve" ? "approved" : "denied", ...(note !== undefined ? { note } : {}), ...(ttl_seconds !== undefined ? { ttlSeconds: ttl_seconds } : {}) });
    const out = { id, verdict: r.decision.verdict, applied: r.applied, ...(r.decision.expiresAt ? { expiresAt: r.decision.expiresAt } : {}) };
    return { structured: out, text: `${id} ${out.verdict}${r.applied ? " and applied" : ""}${out.expiresAt ? ` until ${out.expiresAt}` : ""}.` };
  },
});
