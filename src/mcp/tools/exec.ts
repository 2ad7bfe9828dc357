// bottle_exec: a thin adapter over bottles/exec.
import { z } from "zod";
import { execInBottle, execOutputSchema, MAX_EXEC_TIMEOUT_MS } from "../../bottles/index.js";
import { defineTool } from "../define-tool.js";
import { slugArg } from "./args.js";

export const registerExecTool = defineTool({
  name: "bottle_exec",
  title: "Run a command in a bottle",
  description: "Run argv in the bottle's agent container (no shell unless you call one) and return exit code, stdout, stderr (capped) and duration.",
  kind: "write",
  input: z.object({
    slug: slugArg,
    argv: z.array(z.string().max(100_000)).min(1).max(1000),
    timeout_ms: z.number().int().min(1).max(MAX_EXEC_TIMEOUT_MS).default(600_000),
    stdin: z.string().max(10_000_000).optional(),
  }),
  output: execOutputSchema,
  handler: async ({ slug, argv, timeout_ms, stdin }, ctx) => {
    const r = await execInBottle(slug, argv, { timeoutMs: timeout_ms, signal: ctx.signal, ...(stdin !== undefined ? { stdin } : {}) });
    return { structured: r, text: `exit ${r.exitCode} in ${r.durationMs} ms${r.timedOut ? " (timed out)" : ""}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}` };
  },
});
