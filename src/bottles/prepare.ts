// prepare: everything a bottle's state dir must hold before the engine
// brings it up: CAs, the agent's trust bundle, sidecar configs, the agent's
// view of its access, the plan input grants are resolved from, the compose file.
import { promises as fs } from "node:fs";
import { rootCertificates } from "node:tls";
import { ensureQueue } from "../contracts/queue.js";
import { fileReadyServices, type Plan } from "../plan/index.js";
import { renderAgentView } from "../render/agent-view.js";
import type { RenderedBottle } from "../render/index.js";
import { writeFileAtomic } from "../state/atomic.js";
import { knownHostsFile, readyDirOf, systemCaFile, upstreamCaFile } from "../state/layout.js";
import { writePlanInput, type PlanInput } from "./plan-input.js";
import { readSystemCaBundle } from "./system-trust.js";

/** Directories holding only public material the agent or egress read. */
const PUBLIC_DIR = 0o755;
const PRIVATE_DIR = 0o700;

export async function prepareStateDir(plan: Plan, rendered: RenderedBottle, input: PlanInput): Promise<void> {
  const p = plan.paths;
  // First, so a host without a CA store fails before anything is written.
  const systemCas = plan.firewall.trustSystem ? await readSystemCaBundle() : undefined;
  const dirs: Array<[string, number]> = [
    [p.firewallConfigDir, PRIVATE_DIR],
    [p.firewallCaDir, PRIVATE_DIR],
    [p.trustDir, PUBLIC_DIR],
    [p.accessDir, PUBLIC_DIR],
    [p.tasksDir, PRIVATE_DIR],
    // The agent (root in its container) writes its tasks here.
    [p.taskIoDir, PUBLIC_DIR],
  ];
  if (plan.egress) dirs.push([p.egressConfigDir, PRIVATE_DIR], [p.egressCaDir, PRIVATE_DIR]);
  if (plan.gitGate) dirs.push([p.gitGateConfigDir, PRIVATE_DIR], [p.knownHostsDir, PRIVATE_DIR]);
  if (plan.supervise) dirs.push([p.queueDir, PRIVATE_DIR]);
  // Each sidecar's ready dir: written by that sidecar (it runs as the host uid), read by start.
  for (const service of fileReadyServices(plan)) dirs.push([readyDirOf(p, service), PRIVATE_DIR]);
  for (const [dir, mode] of dirs) {
    await fs.mkdir(dir, { recursive: true, mode });
    await fs.chmod(dir, mode);
  }

  // Loaded here, not at startup: the X.509 library is most of what an MCP server's cold start would parse.
  const { createCertificateAuthority } = await import("../security/ca.js");
  const firewallCa = await createCertificateAuthority(`bot-bottle firewall ${plan.slug}`);
  await writeFileAtomic(p.firewallCaCert, firewallCa.certPem, 0o644);
  await writeFileAtomic(p.firewallCaKey, firewallCa.keyPem, 0o600);
  await writeFileAtomic(p.trustFirewallCa, firewallCa.certPem, 0o644);
  const bundle = [...rootCertificates, firewallCa.certPem.trim()];
  if (plan.egress) {
    const egressCa = await createCertificateAuthority(`bot-bottle egress ${plan.slug}`);
    await writeFileAtomic(p.egressCaCert, egressCa.certPem, 0o644);
    await writeFileAtomic(p.egressCaKey, egressCa.keyPem, 0o600);
    await writeFileAtomic(p.trustEgressCa, egressCa.certPem, 0o644);
    bundle.push(egressCa.certPem.trim());
  }
  for (const [i, file] of plan.firewall.trustFiles.entries()) {
    await writeFileAtomic(upstreamCaFile(p, i), await fs.readFile(file, "utf8"), 0o644);
  }
  if (systemCas !== undefined) await writeFileAtomic(systemCaFile(p), systemCas, 0o644);
  await writeFileAtomic(p.trustBundle, `${bundle.join("\n")}\n`, 0o644);

  for (const f of rendered.files) await writeFileAtomic(f.path, f.content, 0o600);
  for (const u of plan.gitGate?.upstreams ?? []) {
    const line = u.knownHosts.kind === "inline" ? `${u.knownHosts.line}\n` : await fs.readFile(u.knownHosts.path, "utf8");
    await writeFileAtomic(knownHostsFile(p, u.name), line, 0o600);
  }
  // What grants are resolved from later, and the agent's view of its access.
  await writePlanInput(p, input);
  for (const f of renderAgentView(plan, new Date().toISOString())) await writeFileAtomic(f.path, f.content, 0o644);
  if (plan.supervise) await ensureQueue(p.queueDir);
  await writeFileAtomic(p.composeFile, rendered.composeYaml, 0o600);
}
