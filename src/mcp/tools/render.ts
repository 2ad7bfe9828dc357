// bottle_render: a thin adapter over bottles/render.
import { z } from "zod";
import { renderOutput, renderOutputSchema, renderProfile, warningText } from "../../bottles/index.js";
import { defineTool } from "../define-tool.js";

export const registerRenderTool = defineTool({
  name: "bottle_render",
  title: "Render a bottle",
  description:
    "Resolve an agent profile from the manifest into a plan and render the Docker Compose file and sidecar configs a bottle would run, without starting anything. " +
    "Use it to check a profile or see what a bottle will contain. Subnets are placeholders until the bottle is started.",
  kind: "read",
  input: z.object({
    profile: z.string().min(1).max(64).describe("Agent profile name from the manifest's `agents:`."),
    manifest: z.string().min(1).max(4096).optional().describe("Path to the manifest (default: $BOTTLE_MANIFEST, else ./bottle.yaml)."),
    slug: z.string().max(200).optional().describe('Bottle slug: 1-40 of [a-z0-9-]. Default "<profile>-<4 hex>".'),
  }),
  output: renderOutputSchema,
  handler: async ({ profile, manifest, slug }) => {
    const r = renderProfile({ profile, ...(manifest ? { manifest } : {}), ...(slug !== undefined ? { slug } : {}) });
    const s = r.summary;
    const text = [
      `Rendered profile "${s.profile}" as bottle ${s.slug} (project ${s.project}, firewall ${s.firewall}).`,
      `Services: ${s.services.map((x) => `${x.service} (${x.image})`).join(", ")}.`,
      `Agent proxy: ${s.agentProxy}. Allowed: ${s.allow.join(", ") || "(nothing)"}.`,
      ...r.warnings.map((w) => `Warning: ${warningText(w)}`),
      "",
      r.composeYaml,
    ].join("\n");
    return { structured: renderOutput(r), text };
  },
});
