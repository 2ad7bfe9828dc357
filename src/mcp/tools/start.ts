// bottle_start: a thin adapter over bottles/start.
import { z } from "zod";
import { startBottle, startOutput, startOutputSchema } from "../../bottles/index.js";
import { defineTool } from "../define-tool.js";
import { slugArg } from "./args.js";

export const registerStartTool = defineTool({
  name: "bottle_start",
  title: "Start a bottle",
  description: "Start a bottle for an agent profile: networks, sidecars, agent; waits until every service is healthy. Sends progress notifications when the request has a progress token.",
  kind: "write",
  input: z.object({
    profile: z.string().min(1).max(64),
    manifest: z.string().min(1).max(4096).optional(),
    slug: slugArg.optional(),
  }),
  output: startOutputSchema,
  handler: async ({ profile, manifest, slug }, ctx) => {
    const token = ctx._meta?.progressToken;
    let n = 0;
    const r = await startBottle({
      profile,
      ...(manifest ? { manifest } : {}),
      ...(slug !== undefined ? { slug } : {}),
      signal: ctx.signal,
      // This server lives on: after a start of a profile with `pool: N`, top its warm pool up.
      refillPool: true,
      onProgress: (step, message) => {
        if (token !== undefined)
          void ctx.sendNotification({ method: "notifications/progress", params: { progressToken: token, progress: ++n, total: 6, message: `${step}: ${message}` } }).catch(() => {});
      },
    });
    const out = startOutput(r);
    return { structured: out, text: `Bottle ${out.slug} is ${out.state} (services: ${out.services.join(", ")}). Run commands with bottle_exec.` };
  },
});
