// bottle_stop: a thin adapter over bottles/stop.
import { z } from "zod";
import { stopBottle, stopOutputSchema } from "../../bottles/index.js";
import { defineTool } from "../define-tool.js";
import { slugArg } from "./args.js";

export const registerStopTool = defineTool({
  name: "bottle_stop",
  title: "Stop a bottle",
  description: "Stop a bottle: save its logs, remove its containers and networks. Idempotent. purge also deletes its state dir.",
  kind: "destructive",
  idempotent: true,
  input: z.object({ slug: slugArg, purge: z.boolean().default(false) }),
  output: stopOutputSchema,
  handler: async ({ slug, purge }) => {
    const r = await stopBottle(slug, { purge });
    return { structured: r, text: `Bottle ${r.slug} ${r.state} (was ${r.wasState}) in ${r.ms} ms.` };
  },
});
