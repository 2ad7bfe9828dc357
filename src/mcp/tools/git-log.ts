// bottle_git_log: the git gate's push decisions as structured records.
import { z } from "zod";
import { formatGitDecisions, gitDecisionOutputSchema, readGitDecisions } from "../../bottles/index.js";
import { defineTool } from "../define-tool.js";

export const registerGitLogTool = defineTool({
  name: "bottle_git_log",
  title: "Git gate push decisions",
  description:
    "Every push the bottle's git gate judged, one record per ref: ref, old/new sha, verdict (accepted/refused), the rule that refused it and why (the gate's policy, or git's own checks, a failed check or a timeout), and what the upstream answered. Names and reasons are agent-supplied text: escaped in the text output. Clone URLs are in bottle_start's output.",
  kind: "read",
  input: z.object({
    slug: z.string().min(1).max(200).describe("Bottle slug, e.g. implementer-7f3a."),
    upstream: z.string().max(64).optional().describe("Only this upstream's pushes."),
    tail: z.number().int().min(1).max(1000).default(100).describe("At most this many records, the most recent."),
  }),
  output: gitDecisionOutputSchema,
  handler: async ({ slug, upstream, tail }) => {
    const r = await readGitDecisions({ slug, ...(upstream ? { upstream } : {}), tail });
    return { structured: r, text: formatGitDecisions(r.decisions) };
  },
});
