// bottle_cleanup: a thin adapter over bottles/cleanup.
import { z } from "zod";
import { cleanup, cleanupOutputSchema, cleanupText } from "../../bottles/index.js";
import { defineTool } from "../define-tool.js";

export const registerCleanupTool = defineTool({
  name: "bottle_cleanup",
  title: "Clean up orphans",
  description: "Remove Docker objects no live bottle owns (containers/networks without state, bottles whose start died, leftovers of stopped ones) and stale locks. Never touches running bottles.",
  kind: "destructive",
  idempotent: true,
  input: z.object({ purge: z.boolean().default(false).describe("Also delete the state dirs of what is cleaned up.") }),
  output: cleanupOutputSchema,
  handler: async ({ purge }) => {
    const r = await cleanup({ purge });
    return { structured: r, text: cleanupText(r) ?? "Nothing to clean up." };
  },
});
