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
import type { CertificateAuthority } from "../security/ca.js";

/** Directories holding only public material the agent or egress read. */
const PUBLIC_DIR = 0o755;
const PRIVATE_DIR = 0o700;

export interface BottleCas {
  firewall: CertificateAuthority;
  egress?: CertificateAuthority;
}

/**
 * The bottle's fresh CAs. They depend only on the slug and on whether egress
 * runs, so start makes them while it checks images and creates networks.
 */
export async function createBottleCas(plan: Pick<Plan, "slug" | "egress">): Promise<BottleCas> {
  // Loaded here, not at startup: the X.509 library is most of what an MCP server's cold start would parse.
  const { createCertificateAuthority } = await import("../security/ca.js");
  const [firewall, egress] = await Promise.all([
    createCertificateAuthority(`bot-bottle firewall ${plan.slug}`),
    plan.egress ? createCertificateAuthority(`bot-bottle egress ${plan.slug}`) : undefined,
  ]);
  return { firewall, ...(egress ? { egress } : {}) };
}

export async function prepareStateDir(plan: Plan, rendered: RenderedBottle, input: PlanInput, cas?: Promise<BottleCas>): Promise<void> {
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

  const { firewall: firewallCa, egress: egressCa } = await (cas ?? createBottleCas(plan));
  if (plan.egress && !egressCa) throw new Error("internal: the bottle runs egress but no egress CA was made");
  const bundle = [...rootCertificates, firewallCa.certPem.trim()];
  if (plan.egress && egressCa) bundle.push(egressCa.certPem.trim());
  // Every file is independent of the others (each written whole, temp +
  // rename): write them at once, so the fsyncs overlap. The compose file
  // goes last: it is what the engine reads.
  const writes: Array<Promise<unknown>> = [
    writeFileAtomic(p.firewallCaCert, firewallCa.certPem, 0o644),
    writeFileAtomic(p.firewallCaKey, firewallCa.keyPem, 0o600),
    writeFileAtomic(p.trustFirewallCa, firewallCa.certPem, 0o644),
    writeFileAtomic(p.trustBundle, `${bundle.join("\n")}\n`, 0o644),
    ...rendered.files.map((f) => writeFileAtomic(f.path, f.content, 0o600)),
    // What grants are resolved from later, and the agent's view of its access.
    writePlanInput(p, input),
    ...renderAgentView(plan, new Date().toISOString()).map((f) => writeFileAtomic(f.path, f.content, 0o644)),
    ...plan.firewall.trustFiles.map(async (file, i) => writeFileAtomic(upstreamCaFile(p, i), await fs.readFile(file, "utf8"), 0o644)),
    ...(plan.gitGate?.upstreams ?? []).map(async (u) => {
      const line = u.knownHosts.kind === "inline" ? `${u.knownHosts.line}\n` : await fs.readFile(u.knownHosts.path, "utf8");
      await writeFileAtomic(knownHostsFile(p, u.name), line, 0o600);
    }),
  ];
  if (plan.egress && egressCa) {
    writes.push(writeFileAtomic(p.egressCaCert, egressCa.certPem, 0o644), writeFileAtomic(p.egressCaKey, egressCa.keyPem, 0o600), writeFileAtomic(p.trustEgressCa, egressCa.certPem, 0o644));
  }
  if (systemCas !== undefined) writes.push(writeFileAtomic(systemCaFile(p), systemCas, 0o644));
  if (plan.supervise) writes.push(ensureQueue(p.queueDir));
  // allSettled first: no write may still be running when an error returns (rollback removes the dir).
  const results = await Promise.allSettled(writes);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
  await writeFileAtomic(p.composeFile, rendered.composeYaml, 0o600);
}
