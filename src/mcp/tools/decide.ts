// bottle_decide: approve or deny an agent's access request.
import { z } from "zod";
import { decide, decisionJson, formatDecision } from "../../bottles/index.js";
import { defineTool } from "../define-tool.js";

export const routeSchema = z.object({ path_prefix: z.string(), port: z.number().int(), header: z.string(), value: z.string() });

export const registerDecideTool = defineTool({
  name: "bottle_decide",
  title: "Decide a proposal",
  description:
    "Approve or deny an agent's access request. Approval applies it at once (sidecar configs rewritten and reloaded, no restart); ttl_seconds withdraws it again after that long. Refused: targets that can never work (localhost, metadata, private addresses outside allow_cidrs, bare TLDs) and routes that would send a credential anywhere the profile does not already send it. Broad requests (a public-suffix wildcard like *.com, an IP address) need force: true. If another decision won a race, this one is refused and says which.",
  kind: "write",
  input: z.object({
    slug: z.string().min(1).max(200),
    id: z.string().min(1).max(64),
    verdict: z.enum(["approve", "deny"]),
    note: z.string().max(4000).optional(),
    ttl_seconds: z
      .number()
      .int()
      .min(1)
      .max(30 * 86_400)
      .optional(),
    force: z.boolean().default(false).describe("Approve a broad request (see its flags) anyway."),
  }),
  output: z.object({
    id: z.string(),
    verdict: z.enum(["approved", "denied"]),
    applied: z.boolean(),
    expiresAt: z.string().optional(),
    request: z.object({ kind: z.string(), target: z.string(), route: routeSchema.optional() }),
    flags: z.array(z.string()),
  }),
  handler: async ({ slug, id, verdict, note, ttl_seconds, force }) => {
    const r = await decide({
      slug,
      id,
      verdict: verdict === "approve" ? "approved" : "denied",
      force,
      ...(note !== undefined ? { note } : {}),
      ...(ttl_seconds !== undefined ? { ttlSeconds: ttl_seconds } : {}),
    });
    return { structured: decisionJson(r), text: formatDecision(r) };
  },
});
