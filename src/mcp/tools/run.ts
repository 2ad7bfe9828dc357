// bottle_run: start a task (a thin adapter over bottles/tasks).
import { z } from "zod";
import { MAX_TASK_TIMEOUT_S, runOutputSchema, runTask } from "../../bottles/index.js";
import { defineTool } from "../define-tool.js";
import { slugArg } from "./args.js";

export const registerRunTool = defineTool({
  name: "bottle_run",
  title: "Start a task in a bottle",
  description:
    "Start argv in the bottle's agent container as a detached task (no shell unless you call one) and return its task_id at once. Read its state and output with bottle_task (wait_s waits for the end), stop it with bottle_cancel. Tasks and their output (the newest 64 MiB) outlive this server; stopping the bottle ends its tasks.",
  kind: "write",
  input: z.object({
    slug: slugArg,
    argv: z.array(z.string().max(100_000)).min(1).max(1000),
    env: z.record(z.string().max(200), z.string().max(100_000)).optional().describe("Extra environment variables for the command."),
    cwd: z.string().min(1).max(4096).optional().describe("Absolute working directory in the agent container."),
    timeout_s: z.number().int().min(1).max(MAX_TASK_TIMEOUT_S).optional().describe("SIGTERM to the task's process group after this long, SIGKILL 2 s later (state timed_out)."),
    stdin: z.string().max(10_000_000).optional(),
  }),
  output: runOutputSchema,
  handler: async ({ slug, argv, env, cwd, timeout_s, stdin }) => {
    const r = await runTask(slug, argv, {
      ...(env ? { vars: env } : {}),
      ...(cwd !== undefined ? { cwd } : {}),
      ...(timeout_s !== undefined ? { timeoutS: timeout_s } : {}),
      ...(stdin !== undefined ? { stdin } : {}),
    });
    return { structured: r, text: `Task ${r.taskId} started in ${r.slug}. Read it with bottle_task {slug: "${r.slug}", task_id: "${r.taskId}"}.` };
  },
});
