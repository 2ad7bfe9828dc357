// bottle_cancel: end a task's whole process tree (a thin adapter over bottles/tasks).
import { z } from "zod";
import { cancelOutputSchema, cancelTask, MAX_GRACE_S, taskText } from "../../bottles/index.js";
import { defineTool } from "../define-tool.js";
import { slugArg } from "./args.js";

export const registerCancelTool = defineTool({
  name: "bottle_cancel",
  title: "Cancel a task",
  description:
    "SIGTERM to the task's process group (the command and everything it started), SIGKILL after grace_s (default 5) if it is still running; returns once it has ended. A task that already ended is left as it was.",
  kind: "destructive",
  idempotent: true,
  input: z.object({ slug: slugArg, task_id: z.string().min(1).max(64), grace_s: z.number().min(0).max(MAX_GRACE_S).optional() }),
  output: cancelOutputSchema,
  handler: async ({ slug, task_id, grace_s }) => {
    const r = await cancelTask(slug, task_id, grace_s !== undefined ? { graceS: grace_s } : {});
    return { structured: r, text: `${r.signalled ? (r.killed ? "Killed after the grace period: " : "Terminated: ") : "Not running: "}${taskText(r.task)}` };
  },
});
