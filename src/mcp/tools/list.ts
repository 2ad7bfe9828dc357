// bottle_list: a thin adapter over bottles/list.
import { z } from "zod";
import { listBottles, listOutputSchema } from "../../bottles/index.js";
import { defineTool } from "../define-tool.js";

export const registerListTool = defineTool({
  name: "bottle_list",
  title: "List bottles",
  description:
    "Every bottle known from state dirs and Docker labels, with its state (running, pooled — waiting in a warm pool —, starting, stopped, failed, degraded or orphaned), its containers and networks.",
  kind: "read",
  input: z.object({}),
  output: listOutputSchema,
  handler: async () => {
    const bottles = await listBottles();
    return { structured: { bottles }, text: bottles.length ? bottles.map((b) => `${b.slug}  ${b.state}  (${b.profile})${b.detail ? `  ${b.detail}` : ""}`).join("\n") : "No bottles." };
  },
});
