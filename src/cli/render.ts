import { parseArgs } from "node:util";
import { renderOutput, renderProfile, warningText, type RenderOutcome } from "../bottles/index.js";
import { BottleError } from "../errors.js";
import { EXIT, indent, type Verb } from "./output.js";

const usage = "bottle render <profile> [--manifest FILE] [--slug SLUG] [--json]";

export const renderVerb: Verb = {
  name: "render",
  usage: `${usage}\n                                    show the compose file and sidecar configs a bottle would run`,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { manifest: { type: "string", short: "m" }, slug: { type: "string" }, json: { type: "boolean", default: false } },
    });
    if (positionals.length !== 1) throw new BottleError("bad-input", `usage: ${usage}`);
    const r = renderProfile({ profile: positionals[0]!, ...(values.manifest ? { manifest: values.manifest } : {}), ...(values.slug !== undefined ? { slug: values.slug } : {}) });
    process.stdout.write(values.json ? `${JSON.stringify(renderOutput(r), null, 2)}\n` : humanRender(r));
    return EXIT.ok;
  },
};

function humanRender(r: RenderOutcome): string {
  const s = r.summary;
  const lines = [
    `bottle ${s.slug}  (profile ${s.profile}, project ${s.project}, firewall ${s.firewall})`,
    `  manifest   ${s.manifest}`,
    `  state dir  ${s.stateDir}`,
    `  services   ${s.services.map((x) => x.service).join(", ")}`,
    `  networks   ${s.networks.map((n) => `${n.name} ${n.subnet}${n.internal ? " (internal)" : ""}`).join(", ")}${s.subnetsArePreview ? "  [preview: allocated at start]" : ""}`,
    `  proxy      ${s.agentProxy}`,
    `  allow      ${s.allow.join(", ") || "(nothing)"}`,
    ...s.routes.map((x) => `  route      ${x.host}${x.pathPrefix} sets ${x.header} from ${x.env.map((e) => `$${e}`).join(", ")}`),
    ...s.cloneUrls.map((c) => `  git        ${c.name}: ${c.url}`),
    ...r.warnings.map((w) => `  warning    ${indent(warningText(w), 13)}`),
    "",
    "--- docker-compose.yml",
    r.composeYaml.trimEnd(),
    ...r.files.flatMap((f) => ["", `--- ${f.path} (${f.sidecar})`, f.content.trimEnd()]),
    "",
  ];
  return lines.join("\n");
}
