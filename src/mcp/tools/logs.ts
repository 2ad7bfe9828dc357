// bottle_logs: a thin adapter over bottles/logs.
import { z } from "zod";
import { bottleLogs, logsOutputSchema, MAX_TAIL } from "../../bottles/index.js";
import { defineTool } from "../define-tool.js";
import { slugArg } from "./args.js";

export const registerLogsTool = defineTool({
  name: "bottle_logs",
  title: "Read bottle logs",
  description: "Bounded logs of a bottle: live while running, from the saved compose.log after stop. Filter by service, tail, since (RFC 3339 or e.g. 10m) and a substring.",
  kind: "read",
  input: z.object({
    slug: slugArg,
    service: z.string().max(64).optional(),
    tail: z.number().int().min(1).max(MAX_TAIL).default(200),
    since: z.string().max(64).optional(),
    grep: z.string().max(500).optional(),
  }),
  output: logsOutputSchema,
  handler: async ({ slug, service, tail, since, grep }) => {
    const r = await bottleLogs({ slug, tail, ...(service !== undefined ? { service } : {}), ...(since !== undefined ? { since } : {}), ...(grep !== undefined ? { grep } : {}) });
    return { structured: r, text: r.lines.join("\n") || "(no log lines)" };
  },
});
