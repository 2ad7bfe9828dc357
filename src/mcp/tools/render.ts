import { z } from "zod";
import { renderProfile } from "../../bottles/render.js";
import { warningText } from "../../plan/credential-warnings.js";
import { defineTool } from "../define-tool.js";

const summarySchema = z.object({
  slug: z.string(),
  profile: z.string(),
  project: z.string(),
  manifest: z.string(),
  stateDir: z.string(),
  firewall: z.enum(["builtin", "pipelock"]),
  services: z.array(z.object({ service: z.string(), container: z.string(), image: z.string() })),
  networks: z.array(z.object({ name: z.string(), subnet: z.string(), internal: z.boolean() })),
  subnetsArePreview: z.boolean(),
  agentProxy: z.string(),
  allow: z.array(z.string()),
  routes: z.array(z.object({ name: z.string(), host: z.string(), pathPrefix: z.string(), header: z.string(), env: z.array(z.string()) })),
  cloneUrls: z.array(z.object({ name: z.string(), url: z.string() })),
  forwardedEnv: z.array(z.string()),
  secretEnv: z.array(z.string()),
});

const warningSchema = z.object({
  kind: z.enum(["forwarded", "routed"]),
  variable: z.string(),
  hosts: z.array(z.string()),
  route: z.object({ host: z.string(), header: z.string(), value: z.string() }).optional(),
  message: z.string(),
});

export const renderOutputSchema = z.object({
  summary: summarySchema,
  compose: z.string().describe("The docker-compose.yml the bottle would run (YAML)."),
  files: z.array(z.object({ sidecar: z.enum(["firewall", "egress", "git-gate"]), path: z.string(), content: z.string() })).describe("Sidecar config files, with the state-dir path each is written to."),
  warnings: z.array(warningSchema).describe("Profile settings that will not work as intended, e.g. a forwarded credential the firewall's DLP will refuse; each says what to change."),
});

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
    return { structured: { summary: s, compose: r.composeYaml, files: r.files, warnings: r.warnings }, text };
  },
});
