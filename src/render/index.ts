// Everything a bottle's state dir holds that follows from the plan alone.
import type { Plan } from "../plan/index.js";
import { renderCompose, type ComposeFile } from "./compose.js";
import { toYaml } from "./yaml.js";
import { renderEgressConfig, renderFirewallConfig, renderGitGateConfig, renderPipelockConfig } from "./sidecar-configs.js";

export * from "./compose.js";
export * from "./sidecar-configs.js";

export interface RenderedFile {
  /** Which sidecar reads it. */
  sidecar: "firewall" | "egress" | "git-gate";
  /** Absolute host path inside the state dir. */
  path: string;
  content: string;
}

export interface RenderedBottle {
  compose: ComposeFile;
  composeYaml: string;
  files: RenderedFile[];
}

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

export function serializeCompose(compose: ComposeFile): string {
  return `# Rendered by bot-bottle for project ${compose.name}. Secret values are not in this file:\n# services list them by name and \`docker compose up\` inherits them.\n${toYaml(compose as unknown as Record<string, unknown>)}`;
}

export function renderBottle(plan: Plan): RenderedBottle {
  const compose = renderCompose(plan);
  const files: RenderedFile[] = [];
  const { paths } = plan;
  if (plan.firewall.engine === "builtin") {
    files.push({ sidecar: "firewall", path: paths.firewallConfigFile, content: json(renderFirewallConfig(plan)) });
  } else {
    files.push({ sidecar: "firewall", path: paths.pipelockConfigFile, content: toYaml(renderPipelockConfig(plan)) });
  }
  const egress = renderEgressConfig(plan);
  if (egress) files.push({ sidecar: "egress", path: paths.egressConfigFile, content: json(egress) });
  const gate = renderGitGateConfig(plan);
  if (gate) files.push({ sidecar: "git-gate", path: paths.gitGateConfigFile, content: json(gate) });
  return { compose, composeYaml: serializeCompose(compose), files };
}
