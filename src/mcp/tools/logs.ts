// bottle_logs: a thin adapter over bottles/logs.
import { z } from "zod";
import { bottleLogs, logsOutputSchema, MAX_TAIL } from "../../bottles/index.js";
import { defineTool } from "../define-tool.js";
import { slugArg } from "./args.js";

export const registerLogsTool = defineTool({
  name: "bottle_logs",
  title: "Read bottle logs",
  description:
    "Bounded logs of a bottle: live while running, from the saved compose.log after stop. Filter by service, tail, since (RFC 3339 or e.g. 10m) and a substring. With task_id: one timeline of that task's output lines and the sidecars' decisions (firewall, egress, git gate) while it ran, by time, each marked with its source: what the task did and what it tried to reach. A task line's time is when the task wrapper saw it (within a few tenths of a second of the write); `after` bounds it from below.",
  kind: "read",
  input: z.object({
    slug: slugArg,
    service: z.string().max(64).optional(),
    tail: z.number().int().min(1).max(MAX_TAIL).default(200),
    since: z.string().max(64).optional(),
    grep: z.string().max(500).optional(),
    task_id: z.string().min(1).max(64).optional().describe("Interleave this task's output (bottle_run's task_id) with the sidecars' decisions."),
  }),
  output: logsOutputSchema,
  handler: async ({ slug, service, tail, since, grep, task_id }) => {
    const r = await bottleLogs({
      slug,
      tail,
      ...(service !== undefined ? { service } : {}),
      ...(since !== undefined ? { since } : {}),
      ...(grep !== undefined ? { grep } : {}),
      ...(task_id !== undefined ? { taskId: task_id } : {}),
    });
    return { structured: r, text: r.lines.join("\n") || "(no log lines)" };
  },
});
